package alerts

import (
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
)

// maxHintDepth caps how deep into nested record containers the estimator gives sizes: deeper
// values fall back to CEL's own (unknown, hence maximal) estimate, which only makes queries that
// iterate that deep look costlier. CloudTrail records nest a handful of levels.
const maxHintDepth = 12

// boundedInputs tells CEL's static cost estimator how large the values read from record and
// event can be. Without it every such list or string is of unknown size and any comprehension
// estimates as unbounded; with it a comprehension costs about MaxValueSize times its body, and one
// nested in another about MaxValueSize² times, which the cost limit refuses.
type boundedInputs struct{}

// EstimateSize bounds every node reached from the two variables by MaxValueSize.
func (boundedInputs) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	if len(p) == 0 || len(p) > maxHintDepth || !isInput(p[0]) {
		return nil
	}
	return inputSize()
}

// EstimateCallCost sizes the result of orValue on an optional read from record or event
// (record.?a.?b.orValue("")), whose size CEL cannot follow through the optional; every other
// function is left to CEL's standard cost model.
func (boundedInputs) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	if overloadID != "optional_orValue_value" || target == nil || (*target).Expr() == nil {
		return nil
	}
	if !isInput(rootVar((*target).Expr())) {
		return nil
	}
	sz := *inputSize()
	for _, a := range args {
		if a.ComputedSize() != nil {
			sz = sz.Union(*a.ComputedSize())
		}
	}
	return cost.NewCallEstimate(cost.FixedCostEstimate(1), &sz)
}

func isInput(name string) bool { return name == "record" || name == "event" }

// inputSize is the bound for one value read from the inputs.
func inputSize() *cost.SizeEstimate {
	sz := cost.RangedSizeEstimate(0, MaxValueSize)
	return &sz
}

// rootVar follows a chain of field reads and indexes (plain or optional) down to the variable it
// starts from, or returns "" when the value is computed some other way.
func rootVar(e ast.Expr) string {
	for range maxHintDepth * 2 {
		switch e.Kind() {
		case ast.IdentKind:
			return e.AsIdent()
		case ast.SelectKind:
			e = e.AsSelect().Operand()
		case ast.CallKind:
			c := e.AsCall()
			switch c.FunctionName() {
			case operators.OptSelect, operators.Index, operators.OptIndex:
				if len(c.Args()) == 0 {
					return ""
				}
				e = c.Args()[0]
			default:
				return ""
			}
		default:
			return ""
		}
	}
	return ""
}
