package connectivity

import (
	"errors"
	"regexp"

	"github.com/aws/smithy-go"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/netguard"
)

// What a report may repeat of the answers it got: AWS's own error codes and messages, never
// another server's text (the test must not read internal pages back to its caller), never a
// secret.

// notRepeated stands for the text of an answer that did not come from AWS's own endpoint: a
// connectivity test must not read other servers' pages back to its caller.
const notRepeated = "the answer's text is not shown: the endpoint is not AWS's own"

// apiMessage is AWS's own message for err, without the SDK's wrapping; an endpoint other than
// AWS's gets no text repeated.
func apiMessage(in *core.Integration, err error) string {
	if !netguard.IsAWSEndpoint(in.Endpoint) {
		return notRepeated
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorMessage() != "" {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// codePattern is what an error code looks like; from an endpoint other than AWS's anything else
// is replaced, so that a code cannot carry a page's text either.
var codePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]{0,63}$`)

func safeCode(in *core.Integration, code string) string {
	if code == "" || netguard.IsAWSEndpoint(in.Endpoint) || codePattern.MatchString(code) {
		return code
	}
	return "UnrecognizedError"
}
