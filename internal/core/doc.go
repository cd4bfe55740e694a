// Package core is trailproof's domain: integration settings, the validation action, the run result,
// normalized events, and the correlation logic that turns CloudTrail records into a verdict. It has
// no AWS imports; the CloudTrail source, the stores and the workflow depend on it, never the reverse.
package core
