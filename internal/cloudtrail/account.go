package cloudtrail

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/errclass"
)

// Account returns the AWS account of the integration's credentials, asked with one
// sts:GetCallerIdentity: AWS answers it for any valid credentials, whatever their policies say,
// so it needs no permission. It goes through the integration's own client (proxy, TLS settings,
// the policy's guarded dialer) within its timeout, and is not retried here: a caller that cannot
// learn the account goes on without it and may ask again later.
//
// The answer is kept for the Source's life (the Factory builds a new Source when the integration's
// settings change), so concurrent runs of one integration ask once; so is a failure that only a
// change of settings can cure (credentials, TLS verification, the guard). A failure that may pass
// (throttling, a network fault, a timeout, STS's 5xx) is not kept: the next call asks again. The
// error is an *AccountError.
func (s *Source) Account(ctx context.Context) (string, error) {
	s.account.mu.Lock()
	defer s.account.mu.Unlock()
	if s.account.asked {
		return s.account.id, s.account.err
	}
	id, err := s.askAccount(ctx)
	if err == nil || !core.Temporary(err) {
		s.account.id, s.account.err, s.account.asked = id, err, true
	}
	return id, err
}

func (s *Source) askAccount(ctx context.Context) (string, error) {
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out, err := s.caller.GetCallerIdentity(actx, &sts.GetCallerIdentityInput{})
	if err != nil {
		_, d := classify(err, s.diag)
		if ctx.Err() != nil {
			// The caller gave up (its step's deadline): not STS's failure, and not to be kept.
			d = errclass.Diagnosis{Class: errclass.Timeout, Code: "Canceled", Detail: ctx.Err().Error(), Temporary: true}
		}
		detail := s.scrub.Replace(strings.TrimSpace(d.Detail))
		if detail == "" {
			detail = "no message"
		}
		label := errclass.Label(d.Class)
		if d.Class == errclass.Service {
			label = "STS 5xx"
		}
		msg := label + ": " + detail
		if !d.Temporary && (unreachable(d.Class) || d.Class == errclass.Credentials) {
			// The other classes' remedies speak of LookupEvents.
			msg += "; " + s.scrub.Replace(d.Remedy)
		}
		return "", &AccountError{Code: d.Code, Class: d.Class, Temporary: d.Temporary, Message: msg, Err: err}
	}
	account := aws.ToString(out.Account)
	if account == "" {
		return "", &AccountError{Code: "NoAccount", Class: errclass.Unknown, Message: "STS named no account"}
	}
	return account, nil
}

// AccountError is why sts:GetCallerIdentity could not name the integration's account. Its
// Error text never holds a secret.
type AccountError struct {
	Code      string         // the AWS error code, or errclass's name for a network fault
	Class     errclass.Class // whose side failed, and how
	Temporary bool           // the same call may pass later without a change of settings
	Message   string         // what happened and what to do
	Err       error          // the SDK error
}

// Error names the call and the error code, and says what to do.
func (e *AccountError) Error() string {
	return fmt.Sprintf("sts:GetCallerIdentity: %s: %s", e.Code, e.Message)
}

// Unwrap returns the SDK error.
func (e *AccountError) Unwrap() error { return e.Err }

// ErrorCode gives the failure its core code, as the errors of Lookup do: core.Temporary tells a
// caller whether asking again may help.
func (e *AccountError) ErrorCode() string {
	switch {
	case e.Class == errclass.Throttling:
		return core.ETHROTTLED
	case e.Class == errclass.Credentials || e.Class == errclass.Permission:
		return core.EDENIED
	case e.Temporary:
		return core.ETRANSIENT
	case unreachable(e.Class):
		return core.EUNREACHABLE
	}
	return core.EREJECTED
}
