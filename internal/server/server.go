// Package server is the runtime of `trailproof serve`: the Director's API (internal/api) over HTTP
// with an embedded bbolt store in a data folder, a bearer token, and runs executed in the process
// on a real clock. Run state is stored after every step, so a server stopped mid-run (Shutdown, a
// crash) resumes its waiting and querying runs when it starts again.
//
// The data folder holds:
//
//	trailproof.db      the store (integrations, runs, results, raw events)
//	trailproof.db.key  the AES-256 key that seals integration secrets in the store (mode 0600)
//	token              the bearer token, when TRAILPROOF_TOKEN is not set (mode 0600)
//
// Without an explicit token (Config.Token, from TRAILPROOF_TOKEN) the server listens on loopback
// only: a token that was created unseen in a folder is not enough to expose the API to a network.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/trailproof/trailproof/internal/alerts"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/workflow"
)

// Defaults.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultShutdownTimeout = 15 * time.Second
	// DefaultCallsPerSecond is the LookupEvents budget the server keeps to per credentials and
	// region, under CloudTrail's 2 calls a second on purpose: calls paced at exactly 2 a second
	// reach the service with the process's scheduling jitter, and two intervals shrunk by a few
	// milliseconds put a third call inside one second. On this project's 2-core test machine, under
	// 50 concurrent runs, arrivals jittered by up to 40 ms; 1.8 a second leaves 110 ms.
	DefaultCallsPerSecond = 1.8
	// Files in the data folder.
	DBFile    = "trailproof.db"
	TokenFile = "token"
)

// Config configures a Server.
type Config struct {
	Addr    string // listen address (default DefaultAddr)
	DataDir string // required
	// Token is the bearer token when set explicitly (TRAILPROOF_TOKEN); it allows listening
	// beyond loopback. Empty: the token kept in DataDir/token, created when absent.
	Token string
	// TLSCert and TLSKey (PEM files) make the server listen over HTTPS; required beyond loopback,
	// where the token and the secrets in request bodies would otherwise cross the network in clear.
	TLSCert, TLSKey string
	Logger          *slog.Logger // default: discard
	// Clock drives the runs (default real time).
	Clock clock.Clock
	// Policy is where credentials may be sent (default: AWS CloudTrail hosts only); the operator's
	// --allow-endpoint and --allow-proxy. It applies to saved settings, runs and tests alike.
	Policy *netguard.Policy
	// Sources reads CloudTrail (default: a cloudtrail.Factory on Clock, shared by every run and
	// the connectivity test, so that all of them stay under LookupEvents' rate together).
	Sources core.SourceFactory
	// Tester runs connectivity tests (default connectivity.New with Sources).
	Tester api.Tester
	// StepRetries overrides how often a run retries a failed step (default the engine's).
	StepRetries     int
	ShutdownTimeout time.Duration
	MaxBodyBytes    int64
	// Push takes CloudTrail events pushed as EventBridge sends them on POST /v1/ingest, and runs
	// read them besides LookupEvents (workflow.WithPush). Off, there is no ingest endpoint and a
	// run asks no account of STS.
	Push bool
}

// Server is a running `trailproof serve`.
type Server struct {
	cfg       Config
	store     *bolt.Store
	runner    *Runner
	srv       *http.Server
	url       string
	tokenFile string
	resumed   int
	done      chan error
	log       *slog.Logger
}

// Start opens the store, resumes interrupted runs and serves the API until Shutdown.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.DataDir == "" {
		return nil, core.FieldError("data", "a data folder is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := cfg.Logger
	tlsCfg, err := loadTLS(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, err
	}
	if !isLoopback(cfg.Addr) {
		if tlsCfg == nil {
			return nil, core.FieldError("addr", "refusing to listen on %s beyond loopback over plain HTTP: the token and the secrets in request bodies would cross the network in clear; give --tls-cert and --tls-key, or listen on 127.0.0.1", cfg.Addr)
		}
		if cfg.Token == "" {
			return nil, core.FieldError("addr", "refusing to listen on %s beyond loopback without an explicit token: set TRAILPROOF_TOKEN (%s), or listen on 127.0.0.1", cfg.Addr, MakeTokenHint)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder %s: %w", cfg.DataDir, err)
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := checkPrivateFile(filepath.Join(cfg.DataDir, DBFile)); err != nil {
		return nil, err
	}
	token, tokenFile, err := loadToken(cfg)
	if err != nil {
		return nil, err
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, DBFile))
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		st.Close()
		return nil, err
	}
	if cfg.Sources == nil {
		cfg.Sources = cloudtrail.NewFactory(ctx, cloudtrail.WithClock(cfg.Clock), cloudtrail.WithLogger(log), cloudtrail.WithPolicy(cfg.Policy),
			cloudtrail.WithUserAgent("trailproof-serve"), cloudtrail.WithRateLimit(DefaultCallsPerSecond, 1))
	}
	if cfg.Tester == nil {
		cfg.Tester = connectivity.New(connectivity.WithSources(cfg.Sources), connectivity.WithPolicy(cfg.Policy),
			connectivity.WithClock(cfg.Clock), connectivity.WithLogger(log))
	}
	// Runs of one integration share their CloudTrail reads, and the Factory's limiter is the
	// account's rate budget for every run of the process. The Correlation Query is compiled with
	// CEL; importing internal/alerts also makes ParseIntegration validate it when settings are saved.
	engOpts := []workflow.Option{workflow.WithClock(cfg.Clock), workflow.WithLogger(log),
		workflow.WithAlertCompiler(alerts.Compiler())}
	if cfg.StepRetries > 0 {
		engOpts = append(engOpts, workflow.WithStepRetries(cfg.StepRetries))
	}
	if cfg.Push {
		// serve takes pushed events on its ingest endpoint: a run learns its account at once.
		engOpts = append(engOpts, workflow.WithPush())
	}
	eng := workflow.New(st, cfg.Sources, engOpts...)
	runner := NewRunner(eng, st, log)
	h, err := api.New(api.Config{Store: st, Engine: eng, Runs: runner, Tester: cfg.Tester, Policy: cfg.Policy,
		Auth: api.BearerToken(token), Logger: log, MaxBodyBytes: cfg.MaxBodyBytes, Now: cfg.Clock.Now, Ingest: cfg.Push})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fail(fmt.Errorf("listen on %s: %w", cfg.Addr, err))
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); (!ok || !tcp.IP.IsLoopback()) && (cfg.Token == "" || tlsCfg == nil) {
		ln.Close()
		return fail(core.FieldError("addr", "%s is not a loopback address; beyond loopback set TRAILPROOF_TOKEN and give --tls-cert and --tls-key", ln.Addr()))
	}
	scheme := "http://"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https://"
	}
	s := &Server{
		cfg: cfg, store: st, runner: runner, tokenFile: tokenFile, log: log, done: make(chan error, 1),
		url: scheme + ln.Addr().String(),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
			WriteTimeout: 3 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
	}
	if s.resumed, err = runner.Resume(ctx); err != nil {
		ln.Close()
		runner.Close()
		return fail(err)
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	log.Info("serving", "url", s.url, "dataDir", cfg.DataDir, "tokenFile", tokenFile, "resumedRuns", s.resumed)
	return s, nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:8080.
func (s *Server) URL() string { return s.url }

// TokenFile is where the bearer token is kept; "" when it came from Config.Token.
func (s *Server) TokenFile() string { return s.tokenFile }

// Resumed is how many interrupted runs Start resumed.
func (s *Server) Resumed() int { return s.resumed }

// Runner is the server's run executor.
func (s *Server) Runner() *Runner { return s.runner }

// Done yields the error that stopped serving (nil after Shutdown).
func (s *Server) Done() <-chan error { return s.done }

// Shutdown stops accepting requests, waits for those in flight (until ctx ends), interrupts the
// executing runs (they resume on the next start) and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	herr := s.srv.Shutdown(ctx)
	if herr != nil {
		s.srv.Close()
	}
	s.runner.Close()
	serr := s.store.Close()
	s.log.Info("stopped", "url", s.url)
	return errors.Join(herr, serr)
}

// isLoopback reports whether addr's host is a loopback name or address. An empty host (all
// interfaces) is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadToken returns the explicit token, or the one kept in the data folder (created, mode 0600,
// with 256 random bits, when absent).
func loadToken(cfg Config) (token, file string, err error) {
	if cfg.Token != "" {
		if err := checkToken(strings.TrimSpace(cfg.Token), "TRAILPROOF_TOKEN"); err != nil {
			return "", "", err
		}
		return strings.TrimSpace(cfg.Token), "", nil
	}
	file = filepath.Join(cfg.DataDir, TokenFile)
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	created := base64.RawURLEncoding.EncodeToString(b)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		_, werr := f.WriteString(created + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(file)
			return "", "", fmt.Errorf("write token %s: %w", file, werr)
		}
		return created, file, nil
	case !errors.Is(err, fs.ErrExist):
		return "", "", fmt.Errorf("create token %s: %w", file, err)
	}
	st, err := os.Stat(file)
	if err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", "", &core.Error{Code: core.EINVALID, File: file, Message: fmt.Sprintf(
			"the token file is accessible by group or others (mode %04o): run chmod 600 %s", perm, file)}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", "", fmt.Errorf("read token %s: %w", file, err)
	}
	token = strings.TrimSpace(string(data))
	if err := checkToken(token, "token"); err != nil {
		return "", "", &core.Error{Code: core.EINVALID, File: file, Message: core.ErrorMessage(err) + "; or delete the file to have a new one made"}
	}
	return token, file, nil
}

// ReadToken returns the token kept in a data folder, for clients on the same host (tests, scripts).
func ReadToken(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, TokenFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
