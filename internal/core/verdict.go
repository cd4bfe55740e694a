package core

import "time"

// Verdicts. A run that cannot decide says unknown, never not_logged: an audit copies the verdict,
// and "not logged" from a run that never read CloudTrail would be a false finding.
const (
	VerdictLogged    = "logged"     // CloudTrail events matched the action
	VerdictNotLogged = "not_logged" // the run completed and nothing matched
	VerdictUnknown   = "unknown"    // still running without a match, or failed, or cancelled
)

// MarkLogged records that matched events exist at t: Logged turns true once, with LoggedAt, and
// never turns back, even if a later correlation matches less.
func (r *Run) MarkLogged(matched bool, t time.Time) {
	if matched && (r.Logged == nil || !*r.Logged) {
		r.Logged, r.LoggedAt = ptr(true), &t
	}
	r.SettleVerdict()
}

// MarkAlerted records that alerts were found; like Logged it never turns back.
func (r *Run) MarkAlerted(alerted bool) {
	if alerted {
		r.Alerted = ptr(true)
	}
	r.SettleVerdict()
}

// SettleVerdict derives Verdict, and the booleans that are known, from Status and what has been
// found: a completed run knows both (false when nothing was found); any other run knows only what
// turned true. Call it after every change of Status.
func (r *Run) SettleVerdict() {
	if r.Status == StatusCompleted {
		if r.Logged == nil {
			r.Logged = ptr(false)
		}
		if r.Alerted == nil {
			r.Alerted = ptr(false)
		}
	} else {
		// Only a completed run may say false.
		if r.Logged != nil && !*r.Logged {
			r.Logged = nil
		}
		if r.Alerted != nil && !*r.Alerted {
			r.Alerted = nil
		}
	}
	logged := r.Logged != nil && *r.Logged
	switch {
	case r.Status == StatusFailed || r.Status == StatusCancelled:
		r.Verdict = VerdictUnknown
	case logged:
		r.Verdict = VerdictLogged
	case r.Status == StatusCompleted:
		r.Verdict = VerdictNotLogged
	default:
		r.Verdict = VerdictUnknown
	}
}

// IsLogged reports whether Logged is known to be true.
func (r *Run) IsLogged() bool { return r.Logged != nil && *r.Logged }

// IsAlerted reports whether Alerted is known to be true.
func (r *Run) IsAlerted() bool { return r.Alerted != nil && *r.Alerted }

// Upgrade completes a run stored before runs had a verdict: such a record says "logged": false
// for a failed or unfinished run, which becomes unknown. Stores call it on every run they read.
func (r *Run) Upgrade() {
	if r.Verdict == "" {
		r.SettleVerdict()
	}
}

func ptr[T any](v T) *T { return &v }
