package core

import "encoding/json"

// Alert sources, as an alert's reason names them.
const (
	AlertSourceQuery   = "correlationQuery"
	AlertSourceInsight = "insight"
)

// AlertRule is a compiled Correlation Query: it says whether one event is a hit. Its
// implementation (CEL) lives outside core so that only the binaries that evaluate it link it.
type AlertRule interface {
	// Name identifies the rule in the alerts it raises.
	Name() string
	// Match evaluates the rule over one event: the CloudTrail record and its normalized form.
	Match(record json.RawMessage, ev *Event) (bool, error)
}

// AlertCompiler compiles a Correlation Query into a rule.
type AlertCompiler func(expr string) (AlertRule, error)
