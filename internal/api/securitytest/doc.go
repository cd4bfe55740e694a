// Package securitytest is the attack suite of the API: what a caller holding API access (the
// bearer token of `trailproof serve`, IAM access to the HTTP API) tries in order to get stored
// credentials sent where it wants, or to use the server as a network probe. Every attempt goes
// through the real HTTP stack (api.Handler over a real listener, the bolt store, the CloudTrail
// source factory, the connectivity tester and the run executor of serve) and a listener of the
// test's own stands for the attacker's host: the tests assert it receives no credential, no
// signature and no token, and that each refusal names its field. The suite also tries to start
// `serve` in clear or with a guessable token or an open data folder, and to move one
// integration's sealed secrets into another record. The package holds only tests.
package securitytest
