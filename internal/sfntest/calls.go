package sfntest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Call is one AWS API call a function made, as IAM authorizes it: the action
// ("dynamodb:GetItem") and the resource ARN it acts on ("*" for an action that takes none).
type Call struct {
	Function string // the function's logical ID in template.yaml
	Action   string
	Resource string
}

func (c Call) String() string { return c.Function + " " + c.Action + " on " + c.Resource }

// CallRecorder records the AWS calls of functions, through a middleware each function's AWS
// config carries (Middleware).
type CallRecorder struct {
	mu    sync.Mutex
	calls []Call
}

// iamPrefix maps the SDK's service IDs to IAM's action prefixes.
var iamPrefix = map[string]string{
	"DynamoDB":        "dynamodb",
	"Secrets Manager": "secretsmanager",
	"CloudTrail":      "cloudtrail",
	"STS":             "sts",
	"SFN":             "states",
	"KMS":             "kms",
}

// Middleware returns the API option that records every call made with it as function's. Put it
// in the aws.Config's APIOptions the function's clients are made from.
func (r *CallRecorder) Middleware(function string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("trailproofRecordCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				svc := awsmiddleware.GetServiceID(ctx)
				prefix, ok := iamPrefix[svc]
				if !ok {
					prefix = "unknown(" + svc + ")"
				}
				op := awsmiddleware.GetOperationName(ctx)
				region := awsmiddleware.GetRegion(ctx)
				r.mu.Lock()
				if prefix == "dynamodb" && (op == "TransactWriteItems" || op == "TransactGetItems") {
					// IAM authorizes a transaction item by item, as the single-item actions.
					for _, c := range transactionCalls(region, in.Parameters) {
						c.Function = function
						r.calls = append(r.calls, c)
					}
				}
				action := prefix + ":" + op
				for _, res := range resources(prefix, region, in.Parameters) {
					r.calls = append(r.calls, Call{Function: function, Action: action, Resource: res})
				}
				r.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

// Calls returns the distinct calls recorded, sorted.
func (r *CallRecorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.calls)
	slices.SortFunc(out, func(a, b Call) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// resources returns the ARNs a call acts on, from its input, as IAM evaluates them. The tests'
// account (Account) stands for the deployment's.
func resources(prefix, region string, params any) []string {
	v := reflect.Indirect(reflect.ValueOf(params))
	str := func(name string) string {
		if v.Kind() != reflect.Struct {
			return ""
		}
		f := v.FieldByName(name)
		if f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.String {
			return f.Elem().String()
		}
		return ""
	}
	switch prefix {
	case "dynamodb":
		table := func(name string) string {
			return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", region, Account, name)
		}
		if t := str("TableName"); t != "" {
			if idx := str("IndexName"); idx != "" {
				return []string{table(t) + "/index/" + idx}
			}
			return []string{table(t)}
		}
		var out []string
		if f := v.FieldByName("RequestItems"); f.IsValid() && f.Kind() == reflect.Map {
			for _, k := range f.MapKeys() {
				out = append(out, table(k.String()))
			}
		}
		return out
	case "secretsmanager":
		return []string{str("SecretId")}
	case "sts":
		return []string{str("RoleArn")}
	case "states":
		if a := str("StateMachineArn"); a != "" {
			return []string{a}
		}
		return []string{str("ExecutionArn")}
	}
	return []string{"*"}
}

// transactionActions maps a DynamoDB transaction item's member to the IAM action that authorizes it.
var transactionActions = map[string]string{
	"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
	"ConditionCheck": "dynamodb:ConditionCheckItem", "Get": "dynamodb:GetItem",
}

// transactionCalls returns the item actions of a TransactWriteItems or TransactGetItems input, each
// on its table: DynamoDB checks those, not an action named after the transaction.
func transactionCalls(region string, params any) []Call {
	v := reflect.Indirect(reflect.ValueOf(params))
	if v.Kind() != reflect.Struct {
		return nil
	}
	items := v.FieldByName("TransactItems")
	if !items.IsValid() || items.Kind() != reflect.Slice {
		return nil
	}
	var out []Call
	for i := range items.Len() {
		item := reflect.Indirect(items.Index(i))
		for member, action := range transactionActions {
			f := item.FieldByName(member)
			if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
				continue
			}
			for _, res := range resources("dynamodb", region, f.Interface()) {
				out = append(out, Call{Action: action, Resource: res})
			}
		}
	}
	return out
}
