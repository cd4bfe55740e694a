package cloudtrail

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Account returns the AWS account of the integration's credentials, asked with one
// sts:GetCallerIdentity: AWS answers it for any valid credentials, whatever their policies say,
// so it needs no permission. It goes through the integration's own client (proxy, TLS settings,
// the policy's guarded dialer) within its timeout, and is not retried: a caller that cannot learn
// the account goes on without it.
//
// The answer, or the failure, is kept for the Source's life (the Factory builds a new Source when
// the integration's settings change): concurrent runs of one integration ask once.
func (s *Source) Account(ctx context.Context) (string, error) {
	s.account.mu.Lock()
	defer s.account.mu.Unlock()
	if !s.account.asked {
		s.account.id, s.account.err = s.askAccount(ctx)
		s.account.asked = true
	}
	return s.account.id, s.account.err
}

func (s *Source) askAccount(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out, err := s.caller.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("sts:GetCallerIdentity: %s", s.scrub.Replace(err.Error()))
	}
	account := aws.ToString(out.Account)
	if account == "" {
		return "", fmt.Errorf("sts:GetCallerIdentity named no account")
	}
	return account, nil
}
