package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// DefaultAddr is where Serve listens when no address is given: loopback, a free port.
const DefaultAddr = "127.0.0.1:0"

// Server serves a handler (an Emulator) over HTTP until closed.
type Server struct {
	url  string
	srv  *http.Server
	done chan error
}

// Serve listens on addr (DefaultAddr when empty) and serves h in the background. Point an SDK
// client's BaseEndpoint at URL(). The emulator checks no TLS, so keep it on loopback unless the
// network is trusted.
func Serve(h http.Handler, addr string) (*Server, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen on %s: %w", addr, err)
	}
	s := &Server{
		url:  "http://" + ln.Addr().String(),
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.url }

// Done yields, once, the error that stopped serving: nil after Shutdown or Close.
func (s *Server) Done() <-chan error { return s.done }

// Shutdown stops accepting calls and waits for those in flight, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close stops the server at once.
func (s *Server) Close() error { return s.srv.Close() }
