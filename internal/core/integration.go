package core

import "time"

// Integration types.
const (
	TypeMSI    = "msi"
	TypeLegacy = "legacy"
)

// Defaults from the integration guide (and DESIGN.md for the settings beyond it).
const (
	DefaultTimeout                  = 30    // seconds
	DefaultPageSize                 = 100   // events per page
	DefaultMaxPage                  = 5     // pages per query
	DefaultQueryTime                = 5     // minutes
	DefaultDelayTime                = 0     // minutes
	DefaultQueryInterval            = 30    // seconds
	DefaultCorrelationQueryInterval = 5     // minutes
	DefaultLimit                    = 10000 // events, and alerts, per run
	DefaultSettleTime               = 10    // minutes
	MaxLimit                        = 100000
	// MaxEventsPerCall is LookupEvents' own ceiling on MaxResults.
	MaxEventsPerCall = 50
)

// Regions lists the regions the integration guide supports.
var Regions = []string{
	"ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
	"ap-south-1", "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3",
	"sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2", "us-gov-east-1", "us-gov-west-1",
}

// GlobalRegion is where CloudTrail records IAM, STS and console sign-in events.
const GlobalRegion = "us-east-1"

// Integration is one configured CloudTrail integration, in its resolved form: both the MSI and
// the Legacy settings decode into it, with every default applied (see ParseIntegration).
type Integration struct {
	ID   string `json:"id,omitempty"`
	Type string `json:"type"`
	Name string `json:"name"`

	AWSRegion       string `json:"awsRegion"`
	AccessKeyID     string `json:"accessKeyId,omitempty"`
	SecretAccessKey Secret `json:"secretAccessKey,omitempty"`
	SessionToken    Secret `json:"sessionToken,omitempty"`
	RoleARN         string `json:"roleArn,omitempty"`
	ExternalID      Secret `json:"externalId,omitempty"`
	Endpoint        string `json:"endpoint,omitempty"`
	Proxy           string `json:"proxy,omitempty"`
	Timeout         int    `json:"timeout"`
	VerifySSL       bool   `json:"verifySsl"`
	PageSize        int    `json:"pageSize"`
	MaxPage         int    `json:"maxPage"`

	EventSensorUUIDs []string            `json:"eventSensorUuids,omitempty"`
	AlarmSensorUUIDs []string            `json:"alarmSensorUuids,omitempty"`
	FieldMap         map[string][]string `json:"fieldMap,omitempty"`

	QueryTime                int    `json:"queryTime"`
	DelayTime                int    `json:"delayTime"`
	QueryInterval            int    `json:"queryInterval"`
	CorrelationQueryEnabled  bool   `json:"correlationQueryEnabled"`
	CorrelationQuery         string `json:"correlationQuery,omitempty"`
	CorrelationQueryInterval int    `json:"correlationQueryInterval"`
	DiscoverNetworkDevices   bool   `json:"discoverNetworkDevices"`
	SaveSuspiciousEvents     bool   `json:"saveSuspiciousEvents"`
	EventTimeAdjustment      int    `json:"eventTimeAdjustment"`
	Limit                    int    `json:"limit"`
	SettleTime               int    `json:"settleTime"`

	CreatedAt time.Time `json:"createdAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// QueryBudget is the most events one query may read: pageSize x maxPage (a page above 50 events
// takes several LookupEvents calls).
func (in *Integration) QueryBudget() int { return in.PageSize * in.MaxPage }

// Durations in Go units.
func (in *Integration) QueryTimeD() time.Duration { return time.Duration(in.QueryTime) * time.Minute }
func (in *Integration) DelayTimeD() time.Duration { return time.Duration(in.DelayTime) * time.Minute }
func (in *Integration) QueryIntervalD() time.Duration {
	return time.Duration(in.QueryInterval) * time.Second
}
func (in *Integration) SettleTimeD() time.Duration { return time.Duration(in.SettleTime) * time.Minute }
func (in *Integration) TimeoutD() time.Duration    { return time.Duration(in.Timeout) * time.Second }
func (in *Integration) EventTimeAdjustmentD() time.Duration {
	return time.Duration(in.EventTimeAdjustment) * time.Second
}
func (in *Integration) CorrelationQueryIntervalD() time.Duration {
	return time.Duration(in.CorrelationQueryInterval) * time.Minute
}

// Redact returns a copy with every secret value removed, for printing.
func (in *Integration) Redact() *Integration {
	c := *in
	c.SecretAccessKey = redactSecret(in.SecretAccessKey)
	c.SessionToken = redactSecret(in.SessionToken)
	c.ExternalID = redactSecret(in.ExternalID)
	return &c
}

func redactSecret(s Secret) Secret {
	if s.IsSet() {
		return Redacted
	}
	return ""
}

// Regions to query for a run: the integration's region, and us-east-1 too when the action may have
// produced global-service events (IAM, STS, sign-in), which CloudTrail records only there.
func (in *Integration) QueryRegions(a *Action) []string {
	if in.AWSRegion == GlobalRegion || !a.MayTouchGlobalServices() {
		return []string{in.AWSRegion}
	}
	return []string{in.AWSRegion, GlobalRegion}
}
