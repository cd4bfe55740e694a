// Package conntest holds what tests of the connectivity check put in front of the CloudTrail
// emulator to make it fail the way AWS does: a real SigV4 signature verifier for the emulator's
// Verifier hook, a front that answers ExpiredTokenException for an expired session token (the
// hook can only answer InvalidSignatureException), and an HTTP CONNECT proxy. It is used by the
// tests of internal/connectivity and internal/server only.
package conntest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trailproof/trailproof/internal/emulator"
)

// VerifySigV4 is an emulator.Verifier that recomputes the request's AWS Signature Version 4 with
// the key's secret and compares it with the one sent: a client holding the wrong secret fails it
// as it would fail AWS.
func VerifySigV4(r *http.Request, body []byte, key emulator.Key) error {
	auth := r.Header.Get("Authorization")
	fields := map[string]string{}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return errors.New("not an AWS4-HMAC-SHA256 signature")
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return errors.New("incomplete signature")
	}
	region, service := cred[2], cred[3]
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return errors.New("missing or bad X-Amz-Date")
	}
	clone, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	clone.Header = http.Header{}
	signed := strings.Split(fields["SignedHeaders"], ";")
	clone.ContentLength = 0
	for _, h := range signed {
		switch h {
		case "host", "x-amz-date", "x-amz-security-token":
			// The signer writes these itself.
		case "content-length":
			clone.ContentLength = int64(len(body))
		default:
			clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey.Reveal(),
		SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, clone, hex.EncodeToString(sum[:]), service, region, when); err != nil {
		return fmt.Errorf("recompute the signature: %w", err)
	}
	_, want, _ := strings.Cut(clone.Header.Get("Authorization"), "Signature=")
	if subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return errors.New("signature mismatch")
	}
	return nil
}

// ExpiredToken is the session token ExpireTokens treats as expired.
const ExpiredToken = "expired-session-token-for-tests"

// ExpireTokens answers, as AWS does for a temporary key past its expiry, ExpiredTokenException
// to every call that carries the session token ExpiredToken; other calls go to next.
func ExpireTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Security-Token") == ExpiredToken {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("x-amzn-ErrorType", "ExpiredTokenException")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Proxy is an HTTP proxy that tunnels CONNECT requests, counting them; Refuse makes it answer
// 403 instead.
type Proxy struct {
	*httptest.Server
	Connects atomic.Int64
	Refuse   atomic.Bool
}

// NewProxy starts a CONNECT proxy on loopback; close it with Close.
func NewProxy() *Proxy {
	p := &Proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	return p
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "this test proxy only tunnels CONNECT", http.StatusMethodNotAllowed)
		return
	}
	p.Connects.Add(1)
	if p.Refuse.Load() {
		http.Error(w, "tunnel refused by policy", http.StatusForbidden)
		return
	}
	upstream, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		client.Close()
		upstream.Close()
		return
	}
	if n := buf.Reader.Buffered(); n > 0 {
		b, _ := buf.Reader.Peek(n)
		_, _ = upstream.Write(b)
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, upstream); done <- struct{}{} }()
	<-done
	client.Close()
	upstream.Close()
}

// ClosedPort returns a loopback address nothing listens on (a port just released).
func ClosedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
