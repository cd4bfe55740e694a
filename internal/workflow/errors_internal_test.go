package workflow

import (
	"fmt"
	"testing"

	"github.com/trailproof/trailproof/internal/core"
)

// TestErrorNamesDistinct: each code has its own name, so that a name tells the state machine
// (and the person reading a failed run) the code, and with it whether the step was retried.
func TestErrorNamesDistinct(t *testing.T) {
	seen := map[string]string{}
	for code, name := range errorNames {
		if other, ok := seen[name]; ok {
			t.Errorf("codes %s and %s are both named %s", code, other, name)
		}
		seen[name] = code
		if got := ErrorName(fmt.Errorf("step: %w", &core.Error{Code: code})); got != name {
			t.Errorf("a wrapped %s error is named %s, want %s", code, got, name)
		}
	}
}
