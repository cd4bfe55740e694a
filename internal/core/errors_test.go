package core_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/trailproof/trailproof/internal/core"
)

// coded is an error from outside core that states its code, as the CloudTrail source's do.
type coded struct{ code string }

func (c coded) Error() string     { return "coded " + c.code }
func (c coded) ErrorCode() string { return c.code }

// TestErrorCode: the code of the first error in the chain that has one, however it is wrapped;
// internal for an error without one.
func TestErrorCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("plain"), core.EINTERNAL},
		{fmt.Errorf("fetch: %w", core.Errorf(core.ENOTFOUND, "no run")), core.ENOTFOUND},
		{fmt.Errorf("fetch: %w", coded{core.ETHROTTLED}), core.ETHROTTLED},
		{&core.Error{Code: core.ETRANSIENT, Err: coded{core.EDENIED}}, core.ETRANSIENT},
		{errors.Join(errors.New("first"), fmt.Errorf("second: %w", coded{core.EDENIED})), core.EDENIED},
		{fmt.Errorf("%w and %w", errors.New("a"), core.Errorf(core.EINVALID, "b")), core.EINVALID},
	}
	for _, tt := range tests {
		if got := core.ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if got, want := core.Temporary(tt.err), tt.want == core.ETHROTTLED || tt.want == core.ETRANSIENT; got != want {
			t.Errorf("Temporary(%v) = %v, want %v", tt.err, got, want)
		}
	}
}
