package errclass

import "strings"

// Remedy says what to do about a failure of class c with code: the text both the connectivity
// test and a failed run show.
func Remedy(c Class, code string, s Settings) string {
	switch c {
	case DNS:
		switch {
		case s.Proxy:
			return "check the proxy setting's host name and this host's DNS"
		case s.Endpoint:
			return "check the endpoint setting's host name and this host's DNS (or leave endpoint out to use AWS's)"
		}
		return "check this host's DNS settings and network, and that it may resolve amazonaws.com names"
	case TCP:
		r := "check that the host and port are right and that a firewall or security group lets this host connect out to it"
		if s.Endpoint {
			r = "check the endpoint setting's host and port, and that a firewall or security group lets this host connect out to it"
		}
		if s.Proxy {
			r += "; check the proxy setting"
		}
		return r
	case TLS:
		if code == "TLSVerificationFailed" {
			return "check that endpoint and proxy point where they should (a TLS-inspecting proxy presents its own certificate); " +
				"trust its CA on this host, or set verifySsl to false only for an endpoint you trust"
		}
		return "check that the endpoint speaks HTTPS on that port (use http:// for a plain-HTTP endpoint)"
	case Proxy:
		if code == "ProxyRefused" {
			return "allow CONNECT to the CloudTrail endpoint in the proxy's rules (trailproof sends no proxy authentication)"
		}
		return "check the proxy setting and that the proxy is up and supports CONNECT"
	case Timeout:
		return "the call did not finish within the integration's timeout; check the network, proxy and endpoint, or raise timeout"
	case Throttling:
		return "CloudTrail allows 2 LookupEvents calls a second per account and region and other clients are using that budget; " +
			"lower the query frequency (queryInterval) or the event budget (pageSize x maxPage), or retry later"
	case Service:
		return "CloudTrail failed on its side; this usually passes, retry later"
	case Credentials:
		switch {
		case code == "UnrecognizedClientException" || code == "InvalidClientTokenId" || code == "InvalidAccessKeyId" ||
			strings.HasPrefix(code, "MissingAuthenticationToken") || code == "AuthFailure":
			return "check accessKeyId (copy it again from IAM), that the key is active, and for temporary keys that sessionToken belongs to it"
		case code == "SignatureDoesNotMatch" || code == "InvalidSignatureException" || code == "IncompleteSignature":
			return "the secret does not belong to the access key: copy secretAccessKey again (it is shown only when the key is created; make a new key if it is lost)"
		case strings.HasPrefix(code, "Expired") || code == "RequestExpired" || code == "TokenRefreshRequired":
			return "supply fresh temporary keys with their sessionToken, or use long-term keys or roleArn, which trailproof renews itself"
		case code == "CredentialsUnavailable":
			return "set accessKeyId and secretAccessKey, or roleArn, or give the host running trailproof an IAM role"
		}
		return "check accessKeyId, secretAccessKey, sessionToken and roleArn"
	case Permission:
		switch {
		case code == "OptInRequired" || code == "RegionDisabledException":
			return "enable the region in the AWS account settings, or choose another awsRegion"
		case s.Role:
			return "check that the base credentials may call sts:AssumeRole on roleArn, that its trust policy accepts externalId, and that the role allows cloudtrail:LookupEvents"
		}
		return `grant cloudtrail:LookupEvents to the IAM user or role of this integration, e.g. the policy statement {"Effect": "Allow", "Action": "cloudtrail:LookupEvents", "Resource": "*"} (LookupEvents takes no resource-level permission); check that no SCP or permissions boundary denies it`
	case Refused:
		return "the endpoint or proxy resolves to an internal address; if that is intended, the operator allows the host " +
			"with --allow-endpoint or --allow-proxy (TRAILPROOF_ALLOW_ENDPOINTS, TRAILPROOF_ALLOW_PROXIES, or the template's AllowEndpoints and AllowProxies)"
	case Request:
		if code == "InvalidNextToken" {
			return "CloudTrail rejected the pagination token; run the query again"
		}
		return "check the endpoint setting (it must be a CloudTrail endpoint) and the query's time range"
	}
	return "check the endpoint, proxy and credentials; try again"
}
