package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

func TestIsAWSHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"cloudtrail.us-east-1.amazonaws.com", true},
		{"cloudtrail-fips.us-gov-west-1.amazonaws.com", true},
		{"cloudtrail.cn-north-1.amazonaws.com.cn", true},
		{"cloudtrail.eu-west-1.api.aws", true},
		{"vpce-0a1b2c3d-4e5f6a7b.cloudtrail.eu-west-1.vpce.amazonaws.com", true},
		{"CloudTrail.US-EAST-1.amazonaws.com.", true},
		{"cloudtrail.us-east-1.amazonaws.com.attacker.example", false},
		{"sts.us-east-1.amazonaws.com", false},
		{"cloudtrail.amazonaws.com", false},
		{"evilamazonaws.com", false},
		{"vpce.amazonaws.com", false},
		{"127.0.0.1", false},
		{"169.254.169.254", false},
	}
	for _, tc := range tests {
		if got := IsAWSHost(tc.host); got != tc.want {
			t.Errorf("IsAWSHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestCheckIntegration(t *testing.T) {
	operator := MustNew([]string{"127.0.0.1:4566", "emulator.internal", "cloudtrail.eu-west-1.amazonaws.com"}, []string{"proxy.corp.example:3128"})
	base := func(mod func(*core.Integration)) *core.Integration {
		in := &core.Integration{Type: core.TypeMSI, Name: "t", AWSRegion: "us-east-1", VerifySSL: true}
		mod(in)
		return in
	}
	tests := []struct {
		name   string
		policy *Policy
		in     *core.Integration
		field  string // "" when allowed
	}{
		{"default endpoint", nil, base(func(*core.Integration) {}), ""},
		{"AWS endpoint over https", nil, base(func(in *core.Integration) { in.Endpoint = "https://cloudtrail.us-east-1.amazonaws.com" }), ""},
		{"FIPS endpoint", nil, base(func(in *core.Integration) { in.Endpoint = "https://cloudtrail-fips.us-east-1.amazonaws.com/" }), ""},
		{"VPC endpoint name", nil, base(func(in *core.Integration) {
			in.Endpoint = "https://vpce-0abc-12345678.cloudtrail.us-east-1.vpce.amazonaws.com"
		}), ""},
		{"AWS host over plain http", nil, base(func(in *core.Integration) { in.Endpoint = "http://cloudtrail.us-east-1.amazonaws.com" }), "endpoint"},
		{"AWS host on another port", nil, base(func(in *core.Integration) { in.Endpoint = "https://cloudtrail.us-east-1.amazonaws.com:8443" }), "endpoint"},
		{"a listener of the caller's", nil, base(func(in *core.Integration) { in.Endpoint = "https://listener.attacker.example" }), "endpoint"},
		{"instance metadata", nil, base(func(in *core.Integration) { in.Endpoint = "http://169.254.169.254/latest" }), "endpoint"},
		{"loopback emulator not allowed", nil, base(func(in *core.Integration) { in.Endpoint = "http://127.0.0.1:4566" }), "endpoint"},
		{"loopback emulator allowed", operator, base(func(in *core.Integration) { in.Endpoint = "http://127.0.0.1:4566" }), ""},
		{"allowed host, other port", operator, base(func(in *core.Integration) { in.Endpoint = "http://127.0.0.1:4567" }), "endpoint"},
		{"allowed host without port, any port", operator, base(func(in *core.Integration) { in.Endpoint = "http://emulator.internal:9000" }), ""},
		{"proxy by default", nil, base(func(in *core.Integration) { in.Proxy = "http://proxy.corp.example:3128" }), "proxy"},
		{"allowed proxy", operator, base(func(in *core.Integration) { in.Proxy = "http://proxy.corp.example:3128" }), ""},
		{"caller's proxy", operator, base(func(in *core.Integration) { in.Proxy = "http://proxy.attacker.example:3128" }), "proxy"},
		{"verifySsl off towards AWS", nil, base(func(in *core.Integration) { in.VerifySSL = false }), "verifySsl"},
		{"verifySsl off towards an allowed endpoint", operator, base(func(in *core.Integration) {
			in.Endpoint, in.VerifySSL = "https://emulator.internal", false
		}), ""},
		{"verifySsl off towards the operator's AWS endpoint", operator, base(func(in *core.Integration) {
			in.AWSRegion, in.VerifySSL = "eu-west-1", false
		}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.CheckIntegration(tc.in)
			if got := core.ErrorField(err); got != tc.field || (err != nil && core.ErrorCode(err) != core.EINVALID) {
				t.Fatalf("CheckIntegration: %v (field %q); want field %q", err, got, tc.field)
			}
			if err != nil && !strings.Contains(err.Error(), "--allow-") && tc.field != "endpoint" {
				t.Errorf("the refusal does not say what the operator can allow: %v", err)
			}
		})
	}
}

func TestNewRefusesBadEntries(t *testing.T) {
	for _, bad := range []string{"", "http://", "host:notaport", "host:70000", "user@host"} {
		if _, err := New([]string{bad}, nil); core.ErrorField(err) != "--allow-endpoint" {
			t.Errorf("New(%q): %v; want an error naming --allow-endpoint", bad, err)
		}
	}
	p, err := FromEnv(func(k string) string {
		return map[string]string{EnvAllowEndpoints: " 127.0.0.1:4566 , ,emulator.internal", EnvAllowProxies: "proxy:3128",
			"HTTPS_PROXY": "http://envproxy.corp:8080"}[k]
	}, []string{"flag.example:443"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, hp := range [][2]string{{"127.0.0.1", "4566"}, {"emulator.internal", "1"}, {"flag.example", "443"}} {
		if !p.allowsEndpoint(hp[0], hp[1]) {
			t.Errorf("endpoint %v not allowed", hp)
		}
	}
	for _, hp := range [][2]string{{"proxy", "3128"}, {"envproxy.corp", "8080"}} {
		if !p.allowsProxy(hp[0], hp[1]) {
			t.Errorf("proxy %v not allowed", hp)
		}
	}
}

func TestInternalClass(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "169.254.169.254": "link-local", "fe80::1": "link-local",
		"10.1.2.3": "private", "172.16.0.1": "private", "192.168.1.1": "private", "fd00:ec2::254": "private",
		"239.1.2.3": "multicast", "ff0e::1": "multicast", "0.0.0.0": "unspecified", "::": "unspecified", "100.64.0.1": "shared (carrier-grade NAT)",
		"::ffff:127.0.0.1": "loopback", "64:ff9b::a9fe:a9fe": "link-local", "52.94.133.131": "", "2600:1f18::1": "",
	} {
		if got := internalClass(netip.MustParseAddr(addr)); got != want {
			t.Errorf("internalClass(%s) = %q, want %q", addr, got, want)
		}
	}
}

// TestDialerChecksTheResolvedAddress dials a listener of the test's own by a name (localhost)
// the policy does not allow: the refusal comes from the address the name resolved to, at connect
// time, so a DNS answer that changes after any earlier check is caught the same way.
func TestDialerChecksTheResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	for _, host := range []string{"localhost", "127.0.0.1"} {
		_, err := (*Policy)(nil).Dialer(time.Second).DialContext(ctx, "tcp", net.JoinHostPort(host, port))
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Class != "loopback" {
			t.Fatalf("dial %s: %v; want a loopback refusal", host, err)
		}
		if !strings.Contains(err.Error(), "--allow-endpoint") {
			t.Errorf("the refusal does not say how to allow it: %v", err)
		}
	}
	allowed := MustNew([]string{"127.0.0.1:" + port}, nil)
	c, err := allowed.Dialer(time.Second).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for accepted.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("the listener accepted %d connections; want only the allowed one", n)
	}
}
