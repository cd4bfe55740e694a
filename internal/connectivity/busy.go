package connectivity

import (
	"fmt"
	"time"
)

// BusyError says that the test's call got no turn in the account's LookupEvents budget within
// Queue: other runs and tests were using it. The endpoint was not tried.
type BusyError struct{ Queue time.Duration }

func (e *BusyError) Error() string {
	return fmt.Sprintf("no turn in the account's LookupEvents budget within %s", e.Queue)
}

// check is the failed check a busy test reports: distinct from a slow or failing endpoint.
func (e *BusyError) check() Check {
	return failed("Busy", fmt.Sprintf("trailproof is busy: the test waited %s for a turn in this account's LookupEvents budget (2 calls a second, shared by every run and test of the region) and got none, so the credentials were not checked", e.Queue),
		"retry the test in a few seconds")
}
