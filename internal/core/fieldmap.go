package core

// Field-map targets: the normalized fields a field map may fill. "hosts" gathers every value found
// (all its paths, not only the first), the others take the first path that yields a value.
// "principal" and "session_name" feed actor matching and are not output fields of their own.
var FieldMapTargets = []string{
	"event_id", "event_time", "computer", "hosts", "src_ip", "dest_ip", "user", "description",
	"event_name", "event_source", "region", "account_id", "user_agent", "error_code",
	"access_key_id", "principal", "session_name",
}

// DefaultFieldMap is the field map for CloudTrail: paths address the CloudTrail record
// (userIdentity.arn) or, for names starting with a capital letter, the LookupEvents envelope
// (Username, Resources.0.ResourceName). A user's fieldMap replaces the entries it names and keeps
// the others.
var DefaultFieldMap = map[string][]string{
	"event_id":   {"eventID", "EventId"},
	"event_time": {"eventTime", "EventTime", "@timestamp"},
	// The resource the call acted on, best first: an instance, a bucket, the first resource.
	"computer": {"requestParameters.instanceId", "requestParameters.instancesSet.items.0.instanceId",
		"requestParameters.bucketName", "resources.0.ARN", "Resources.0.ResourceName"},
	// Every host-like value: where the call came from and which endpoint it reached.
	"hosts": {"sourceIPAddress", "tlsDetails.clientProvidedHostHeader",
		"requestParameters.instanceId", "requestParameters.instancesSet.items.0.instanceId",
		"requestParameters.host", "requestParameters.bucketName"},
	"src_ip":        {"sourceIPAddress"},
	"dest_ip":       {"tlsDetails.clientProvidedHostHeader"},
	"user":          {"userIdentity.arn", "userIdentity.userName", "Username", "userIdentity.principalId"},
	"description":   {"errorMessage", "eventType"},
	"event_name":    {"eventName", "EventName"},
	"event_source":  {"eventSource", "EventSource"},
	"region":        {"awsRegion"},
	"account_id":    {"recipientAccountId", "userIdentity.accountId"},
	"user_agent":    {"userAgent"},
	"error_code":    {"errorCode"},
	"access_key_id": {"userIdentity.accessKeyId", "AccessKeyId"},
	"principal": {"userIdentity.arn", "userIdentity.sessionContext.sessionIssuer.arn",
		"userIdentity.userName", "userIdentity.sessionContext.sessionIssuer.userName", "Username"},
	"session_name": {"userIdentity.principalId"},
}
