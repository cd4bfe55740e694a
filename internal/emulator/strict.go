package emulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trailproof/trailproof/internal/core"
)

// awsRegionPattern matches the names AWS gives its regions (us-east-1, ap-southeast-3,
// us-gov-west-1, cn-north-1, eu-isoe-west-1...). Public test data anonymises regions into names
// such as "sagov-westsouth-1r", which it does not match.
var awsRegionPattern = regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso[a-z]?)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-\d{1,2}$`)

// IsAWSRegion reports whether name has the shape of an AWS region's name.
func IsAWSRegion(name string) bool { return awsRegionPattern.MatchString(name) }

// WithAnyRegion, when on, serves every record to a call in any region. Off by default: CloudTrail
// serves a region only the records of that region (global-service events are recorded in
// us-east-1). Records whose awsRegion is not an AWS region are served to every region either way;
// ServedAnyRegion counts them.
func WithAnyRegion(on bool) Option {
	return func(e *Emulator) error { e.regionFilter = !on; return nil }
}

// WithHistory sets how far back, from the emulator's clock, records are served: CloudTrail keeps
// 90 days of management events (core.History, the default); 0 serves every record.
func WithHistory(d time.Duration) Option {
	return func(e *Emulator) error {
		if d < 0 {
			return core.FieldError("history", "must not be negative, got %s", d)
		}
		e.history = d
		return nil
	}
}

// WithUnsigned, when on, answers calls without a SigV4 Authorization header. Off by default: AWS
// refuses them with MissingAuthenticationTokenException.
func WithUnsigned(on bool) Option {
	return func(e *Emulator) error { e.unsigned = on; return nil }
}

// ServedAnyRegion returns how many distinct records with a non-AWS awsRegion the emulator has
// served to a call in some region: a run that found them would find nothing in a real account's
// region, and says so.
func (e *Emulator) ServedAnyRegion() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.anyRegion)
}

// servedTo reports whether a call signed for region may see en; e.mu is held.
func (e *Emulator) servedTo(en *entry, region string) bool {
	if !e.regionFilter || en.region == region {
		return true
	}
	return !IsAWSRegion(en.region)
}

// SigV4Verifier checks a request's AWS Signature Version 4 as AWS does: it signs the request
// again with the key's secret, over the headers the caller signed and at the time it signed, with
// aws-sdk-go-v2's signer, and compares the signatures. The emulator uses it whenever it knows
// keys (WithKeys), unless WithVerifier says otherwise.
func SigV4Verifier() Verifier {
	signer := v4.NewSigner()
	return func(r *http.Request, body []byte, key Key) error {
		auth := r.Header.Get("Authorization")
		cred, ok := parseCredential(auth)
		if !ok {
			return errors.New("no SigV4 credential scope")
		}
		signed := authField(auth, "SignedHeaders=")
		want := authField(auth, "Signature=")
		if signed == "" || want == "" {
			return errors.New("the Authorization header lacks SignedHeaders or Signature")
		}
		at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil {
			return errors.New("no valid X-Amz-Date header")
		}
		clone, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			return err
		}
		clone.Host = r.Host
		clone.ContentLength = int64(len(body))
		for _, h := range strings.Split(signed, ";") {
			switch h {
			case "host", "content-length":
				continue // from Host and ContentLength
			}
			if v, ok := r.Header[http.CanonicalHeaderKey(h)]; ok {
				clone.Header[http.CanonicalHeaderKey(h)] = v
			}
		}
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey.Reveal(),
			SessionToken: r.Header.Get("X-Amz-Security-Token")}
		if err := signer.SignHTTP(context.Background(), creds, clone, hex.EncodeToString(sum[:]), cred.Service, cred.Region, at); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		if got := authField(clone.Header.Get("Authorization"), "Signature="); got != want {
			return errors.New("the signature does not match the key's secret")
		}
		return nil
	}
}

// authField reads one field (SignedHeaders=, Signature=) of a SigV4 Authorization header.
func authField(auth, name string) string {
	_, rest, ok := strings.Cut(auth, name)
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, ", "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
