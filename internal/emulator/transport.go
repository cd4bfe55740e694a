package emulator

import (
	"bytes"
	"io"
	"net/http"
)

// Transport wraps base (http.DefaultTransport when nil) for SDK clients that talk to an emulator
// on loopback. smithy-go closes a request's body as soon as the response headers arrive; when the
// server answers faster than net/http's write loop finishes with the body, which on loopback it
// often does, the write loop fails and closes the connection under the response being read
// ("failed to decode response body ... use of closed network connection", aws-sdk-go-v2 issue
// #2737). Handing the transport its own copy of the body removes the race instead of retrying it.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return ownBody{base}
}

type ownBody struct{ base http.RoundTripper }

func (t ownBody) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return t.base.RoundTrip(r)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(b))
	c.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	c.ContentLength = int64(len(b))
	return t.base.RoundTrip(c)
}
