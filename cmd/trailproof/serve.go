package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/server"
)

// envToken names the environment variable that sets serve's bearer token explicitly.
const envToken = "TRAILPROOF_TOKEN"

// defaultDataDir is where serve keeps its store and token without --data:
// $XDG_DATA_HOME/trailproof, else ~/.local/share/trailproof.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "trailproof")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "trailproof")
	}
	return "trailproof-data"
}

// cmdServe serves the Director's API until ctx ends (Ctrl-C, SIGTERM), then shuts down
// gracefully: requests in flight finish, executing runs stop where they are and resume on the
// next start.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", server.DefaultAddr, "listen `address`; beyond loopback only over TLS (--tls-cert, --tls-key) with "+envToken+" set")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this certificate `file` (PEM, the chain after the leaf)")
	tlsKey := fs.String("tls-key", "", "the private key `file` (PEM) of --tls-cert")
	data := fs.String("data", defaultDataDir(), "data `dir`: the store, its seal key and the token file")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (JSON logs on stderr)")
	pushOn := fs.Bool("push", false, "take CloudTrail events pushed as EventBridge sends them (POST /v1/ingest, e.g. from trailproof emulate --push-to) and read them in runs besides LookupEvents")
	var allow allowFlags
	allow.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	policy, err := allow.policy()
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("serve takes no arguments, got %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError("--log-level must be debug, info, warn or error, not %q", *logLevel)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	srv, err := server.Start(ctx, server.Config{Addr: *addr, DataDir: *data, Token: os.Getenv(envToken), Logger: log, Policy: policy,
		TLSCert: *tlsCert, TLSKey: *tlsKey, Push: *pushOn})
	if err != nil {
		return err
	}
	where := "from " + envToken
	if srv.TokenFile() != "" {
		where = "in " + srv.TokenFile() + " (send it as Authorization: Bearer <token>)"
	}
	fmt.Fprintf(stdout, "trailproof %s serving the API at %s\n  data:  %s\n  token: %s\n  runs resumed: %d\nCtrl-C stops it.\n",
		version, srv.URL(), *data, where, srv.Resumed())
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-srv.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), server.DefaultShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// cmdTest runs the connectivity test of an integration file and prints each check. Exit 0 when
// every check passed, 1 when one failed, 2 for bad input.
func cmdTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("integration", "", "integration settings `file` (JSON, MSI or Legacy form)")
	format := fs.String("format", "table", "output: table or json")
	var allow allowFlags
	allow.register(fs)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitBadInput // the flag package has said what is wrong
	}
	switch {
	case fs.NArg() > 0:
		return report(stderr, usageError("test takes no arguments, got %q", fs.Args()))
	case *file == "":
		return report(stderr, usageError("--integration FILE is required"))
	case *format != "table" && *format != "json":
		return report(stderr, usageError("--format must be table or json, not %q", *format))
	}
	in, err := core.LoadIntegrationFile(*file)
	if err != nil {
		return report(stderr, err)
	}
	policy, err := allow.policy()
	if err != nil {
		return report(stderr, err)
	}
	rep := connectivity.New(connectivity.WithPolicy(policy)).Test(ctx, in)
	if ctx.Err() != nil {
		return report(stderr, ctx.Err())
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = printChecks(stdout, in, &rep)
	}
	if err != nil {
		return report(stderr, err)
	}
	if !rep.OK {
		return exitFailed
	}
	return exitOK
}

// printChecks writes one line per check, with the remedy under a failed one.
func printChecks(w io.Writer, in *core.Integration, rep *connectivity.Report) error {
	fmt.Fprintf(w, "Connectivity test of %q (%s)\n\n", in.Name, in.AWSRegion)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tTIME\tDETAIL")
	for _, c := range rep.Checks {
		result := c.Status
		if c.Status == connectivity.StatusFailed {
			result = "FAILED"
		}
		took := "-"
		if c.Status != connectivity.StatusSkipped {
			took = (time.Duration(c.DurationMS) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, result, took, c.Message)
		if c.Remedy != "" {
			fmt.Fprintf(tw, "\t\t\tremedy: %s\n", c.Remedy)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.OK {
		_, err := fmt.Fprintln(w, "\nAll checks passed.")
		return err
	}
	f := rep.Failed()
	_, err := fmt.Fprintf(w, "\nThe %s check failed%s.\n", f.Name, codeSuffix(f.Code))
	return err
}

func codeSuffix(code string) string {
	if code == "" {
		return ""
	}
	return " (" + code + ")"
}
