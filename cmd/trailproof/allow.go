package main

import (
	"flag"
	"os"

	"github.com/trailproof/trailproof/internal/netguard"
)

// allowFlags are the operator's allow-lists of serve, run and test: the endpoint and proxy
// hosts an integration's credentials may be sent to beyond AWS's CloudTrail hosts.
type allowFlags struct{ endpoints, proxies multiFlag }

func (a *allowFlags) register(fs *flag.FlagSet) {
	fs.Var(&a.endpoints, "allow-endpoint", "also send credentials to this endpoint `HOST[:PORT]` (an emulator, a private endpoint; plain http and verifySsl=false allowed there); repeatable, added to "+netguard.EnvAllowEndpoints)
	fs.Var(&a.proxies, "allow-proxy", "allow integrations to use this proxy `HOST[:PORT]`; repeatable, added to "+netguard.EnvAllowProxies)
}

// policy is the environment's lists with the flags' entries added.
func (a *allowFlags) policy() (*netguard.Policy, error) {
	return netguard.FromEnv(os.Getenv, a.endpoints, a.proxies)
}
