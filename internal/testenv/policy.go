package testenv

import "github.com/trailproof/trailproof/internal/netguard"

// LoopbackPolicy allows what the tests' own servers listen on (127.0.0.1, any port) as endpoints
// and proxies, the way an operator allows an emulator with --allow-endpoint, and the made-up
// name the DNS-failure tests use; the default policy sends credentials to AWS only.
var LoopbackPolicy = netguard.MustNew([]string{"127.0.0.1", "cloudtrail.nowhere.invalid"}, []string{"127.0.0.1"})
