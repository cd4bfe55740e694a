package alerts

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

// refusal is what a user sees of a refused query: the code, the field and the message.
type refusal struct {
	Code, Field, Message string
}

// costly is the advice every too-costly refusal ends with.
const costly = " (assuming lists and strings in record and event of up to 1000 elements or characters); " +
	"do less per element of a record list: no comprehension (all, exists, exists_one, filter, map) or 'in' over a record list " +
	"inside another, and matches(\"(?i)...\") rather than lowerAscii() on each element"

func TestCompileRefusals(t *testing.T) {
	nested := `record.resources.all(r, record.resources.all(s, r.ARN == s.ARN || r.type != s.type))`
	tests := []struct {
		name string
		expr string
		opts []Option
		// want is the whole message, or its start when prefix is set (CEL's parser lists the
		// tokens it expected, which is long and not ours to pin).
		want   string
		prefix bool
	}{
		{
			name: "empty",
			expr: "  \n",
			want: `is empty: write a CEL expression over record and event, e.g. record.eventName == "StopLogging"`,
		},
		{
			name:   "syntax error gives line and column",
			expr:   `record.eventName == "StopLogging" &&`,
			want:   "syntax error at 1:37: Syntax error: mismatched input '<EOF>' expecting",
			prefix: true,
		},
		{
			name: "syntax error on a later line",
			expr: "record.eventName == \"StopLogging\" &&\n  record.errorCode = \"x\"",
			want: "syntax error at 2:20: Syntax error: token recognition error at: '= ' (and 1 more)",
		},
		{
			name: "unterminated string",
			expr: `record.eventName == "StopLogging`,
			want: "syntax error at 1:21: Syntax error: token recognition error at: '\"StopLogging' (and 1 more)",
		},
		{
			name: "unknown variable",
			expr: `recrod.eventName == "StopLogging"`,
			want: "type error at 1:1: undeclared reference to 'recrod' (did you mean 'record'?)",
		},
		{
			name: "unknown function",
			expr: `record.eventName.lower() == "stoplogging"`,
			want: "type error at 1:23: undeclared reference to 'lower' (did you mean 'lowerAscii'?)",
		},
		{
			name: "wrong argument type",
			expr: `event.event_time > 5 && event.event_name.contains(1)`,
			want: "type error at 1:50: found no matching overload for 'contains' applied to 'dyn.(int)'",
		},
		{
			name: "bad regex literal",
			expr: `record.userAgent.matches("stratus-(")`,
			want: "type error at 1:26: invalid matches argument",
		},
		{
			name: "string result",
			expr: `event.event_name + "!"`,
			want: "must be a condition (bool), but it evaluates to string",
		},
		{
			name: "dyn result",
			expr: `record.readOnly`,
			want: "must be a condition (bool), but it evaluates to dyn: compare the value, e.g. record.readOnly == true",
		},
		{
			name: "too costly nested comprehension",
			expr: nested,
			want: "is too costly: estimated cost up to 211006003, limit 1000000" + costly,
		},
		{
			name: "nested comprehension with a trivial body",
			expr: `record.resources.exists(r, record.resources.exists(s, true))`,
			want: "is too costly: estimated cost up to 4007003, limit 1000000" + costly,
		},
		{
			name: "list search inside a comprehension is quadratic too",
			expr: `record.resources.exists(r, r in record.resources)`,
			want: "is too costly: estimated cost up to 1007003, limit 1000000" + costly,
		},
		{
			name: "a copy of every element",
			expr: `record.resources.exists(r, r.type.lowerAscii().contains("trail"))`,
			want: "is too costly: estimated cost up to 1157003, limit 1000000" + costly,
		},
		{
			name: "a lower cost limit refuses a single comprehension",
			expr: `record.resources.exists(r, r.type == "AWS::S3::Object")`,
			opts: []Option{WithCostLimit(1000)},
			want: "is too costly: estimated cost up to 8003, limit 1000" + costly,
		},
		{
			name: "too long",
			expr: `record.eventName in [` + strings.Repeat(`"StopLogging", `, 300) + `"DeleteTrail"]`,
			want: "is too long: 4535 bytes, limit 4096",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Compile(tt.expr, tt.opts...)
			if err == nil {
				t.Fatalf("compiled (estimated cost %d); want it refused", q.EstimatedCost())
			}
			var ce *core.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, want *core.Error: %v", err, err)
			}
			got := refusal{ce.Code, ce.Field, ce.Message}
			if tt.prefix && strings.HasPrefix(got.Message, tt.want) {
				got.Message = tt.want
			}
			if diff := cmp.Diff(refusal{core.EINVALID, "correlationQuery", tt.want}, got); diff != "" {
				t.Errorf("refusal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, expr := range []string{
		`record.eventName in ["StopLogging", "DeleteTrail"] && !has(record.errorCode)`,
		`event.event_name == "ConsoleLogin" && event.error_code == ""`,
		`record.resources.exists(r, r.type == "AWS::S3::Object")`,
		`event.hosts.exists(h, h.startsWith("ec2."))`,
		// A string test on every element of a record list is the costliest accepted shape.
		`record.resources.exists(r, r.type.contains("Trail"))`,
		`record.resources.exists(r, r.ARN.matches("(?i)trail/stratus"))`,
		`record.?requestParameters.?userName.orValue("") == "bob"`,
		`event.user_agent.lowerAscii().contains("stratus-red-team")`,
		`sets.intersects(event.hosts, ["203.0.113.7", "198.51.100.9"])`,
		`event.event_time > timestamp("2024-07-30T00:00:00Z") && record.readOnly == false`,
		`record.userIdentity.arn.matches("^arn:aws:iam::[0-9]+:root$")`,
		// Comments are part of the language, so a rule file is a valid query as it is.
		"// header\nrecord.eventName == \"StopLogging\" // trailing",
	} {
		q, err := Compile(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if q.EstimatedCost() > DefaultCostLimit {
			t.Errorf("%s: estimate %d above the limit but accepted", expr, q.EstimatedCost())
		}
	}
}

func TestTestdataRulesCompile(t *testing.T) {
	rules := rulesWithPrefix(t, "")
	if len(rules) < 4 {
		t.Fatalf("only %d rules in testdata", len(rules))
	}
	for _, r := range rules {
		q, err := Compile(r.expr)
		if err != nil {
			t.Errorf("%s: %v", r.file, err)
			continue
		}
		if len(r.stratus) == 0 || (r.header["sigma"] == "" && r.header["panther"] == "") {
			t.Errorf("%s: header must cite the sigma or panther rule and its stratus techniques: %v", r.file, r.header)
		}
		t.Logf("%s: estimated cost %d", r.file, q.EstimatedCost())
	}
}

func TestValidateHook(t *testing.T) {
	if core.ValidateCorrelationQuery == nil {
		t.Fatal("importing alerts did not install core.ValidateCorrelationQuery")
	}
	doc := func(q string) []byte {
		return []byte(`{"name":"t","awsRegion":"us-east-1","correlationQueryEnabled":true,"correlationQuery":` + q + `}`)
	}
	_, err := core.ParseIntegration(doc(`"recrod.eventName == 'StopLogging'"`))
	var ce *core.Error
	if !errors.As(err, &ce) {
		t.Fatalf("bad query saved: err = %v", err)
	}
	got := refusal{ce.Code, ce.Field, ce.Message}
	want := refusal{core.EINVALID, "correlationQuery",
		"is not a valid correlation query: type error at 1:1: undeclared reference to 'recrod' (did you mean 'record'?)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseIntegration refusal (-want +got):\n%s", diff)
	}
	if _, err := core.ParseIntegration(doc(`"record.resources.all(r, record.resources.all(s, r == s))"`)); err == nil ||
		!strings.Contains(err.Error(), "is too costly") {
		t.Errorf("too costly query saved: err = %v", err)
	}
	if _, err := core.ParseIntegration(doc(`"record.eventName == 'StopLogging' && !has(record.errorCode)"`)); err != nil {
		t.Errorf("good query refused: %v", err)
	}
}

func TestCompiler(t *testing.T) {
	c := Compiler()
	r, err := c(`record.eventName == "StopLogging"`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != core.AlertSourceQuery {
		t.Errorf("Name() = %q, want %q", r.Name(), core.AlertSourceQuery)
	}
	r, err = c(`record.eventName ==`)
	if err == nil || r != nil {
		t.Errorf("bad query: rule %v (nil interface: %t), err %v; want a nil rule and an error", r, r == nil, err)
	}
}
