// Command trailproof proves, from AWS CloudTrail, what a security-validation action left behind.
//
//	trailproof run      one correlation of one action, end to end
//	trailproof serve    the Director's API with an embedded store
//	trailproof emulate  the CloudTrail LookupEvents emulator on its own
//	trailproof test     the connectivity test of an integration
//
// Exit codes: 0 the run completed (or the command succeeded), 1 it failed, 2 bad input.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/trailproof/trailproof/internal/core"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadInput = 2
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `trailproof proves, from AWS CloudTrail, what a security-validation action left behind.

Usage:
  trailproof run --integration FILE --action FILE [--corpus PATH]... [--clock virtual|real]
                 [--delivery-delay 5m[,12m@0.1]] [--faults SPEC] [--any-region] [--history 2160h]
                 [--format table|json] [--quiet] [--allow-endpoint HOST[:PORT]]...
  trailproof serve [--addr 127.0.0.1:8080] [--data DIR] [--tls-cert FILE --tls-key FILE] [--push]
                   [--allow-endpoint HOST[:PORT]]... [--allow-proxy HOST[:PORT]]...
  trailproof emulate --corpus PATH... [--addr 127.0.0.1:0] [--rate 2] [--delivery-delay 5m[,12m@0.1]] [--faults SPEC]
                 [--key ID:SECRET]... [--any-region] [--history 2160h] [--unsigned]
  trailproof test --integration FILE [--allow-endpoint HOST[:PORT]]... [--allow-proxy HOST[:PORT]]...
  trailproof version

Run "trailproof COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitBadInput
	}
	var err error
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "emulate":
		err = cmdEmulate(ctx, args[1:], stdout, stderr)
	case "test":
		return cmdTest(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "trailproof", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "trailproof: unknown command %q\n\n%s", args[0], usage)
		return exitBadInput
	}
	return report(stderr, err)
}

// report prints err for a person and maps it to an exit code: 2 for bad input, 1 otherwise.
func report(stderr io.Writer, err error) int {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, flag.ErrHelp) {
		return exitOK // -h printed the flags: asking for help is no error
	}
	fmt.Fprintln(stderr, "trailproof:", err)
	if core.ErrorCode(err) == core.EINVALID || errors.Is(err, errUsage) {
		return exitBadInput
	}
	return exitFailed
}

// parseFlags parses a subcommand's flags; -h and --help give flag.ErrHelp, which report turns
// into exit 0 (the flag package has printed the flags), and any other mistake a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return err
	}
	return usageError("%v", err)
}

// errUsage marks a command-line mistake (exit 2).
var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}
