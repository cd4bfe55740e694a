package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/seal"
)

// MovedSecrets stores the integrations "victim" and "attacker", lets move copy the victim's sealed
// secrets into the attacker's record (as someone with write access to the file or table could),
// and checks that they do not open there, with an error naming the record, while the victim's own
// record still opens.
func MovedSecrets(t *testing.T, s core.Store, move func(ctx context.Context) error) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"victim", "attacker"} {
		if err := s.CreateIntegration(ctx, Integration(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := move(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetIntegration(ctx, "attacker")
	if !errors.Is(err, seal.ErrMoved) || !strings.Contains(err.Error(), `integration "attacker"`) {
		t.Errorf("moved secrets: %v, want ErrMoved naming the record", err)
	}
	if _, err := s.GetIntegration(ctx, "victim"); err != nil {
		t.Errorf("the victim's own record: %v", err)
	}
}
