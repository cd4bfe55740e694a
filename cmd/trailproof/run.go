package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/workflow"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type runFlags struct {
	integration, action   string
	corpus                multiFlag
	clock, faults, format string
	deliveryDelay         time.Duration
	regionFilter          bool
	data                  string
	verbose               bool
	allow                 allowFlags
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.integration, "integration", "", "integration settings `file` (JSON, MSI or Legacy form)")
	fs.StringVar(&f.action, "action", "", "action `file` (JSON, as the Director sends it)")
	fs.Var(&f.corpus, "corpus", "CloudTrail records `path` (file or folder) served by the built-in emulator; repeatable")
	fs.StringVar(&f.clock, "clock", "", "virtual or real (default: virtual with --corpus, real without)")
	fs.DurationVar(&f.deliveryDelay, "delivery-delay", 5*time.Minute, "with --corpus: when a record becomes visible after its eventTime")
	fs.StringVar(&f.faults, "faults", "", "with --corpus: injected faults, e.g. throttle=0.3,error=0.1,slow=2s,dup=0.1")
	fs.BoolVar(&f.regionFilter, "filter-region", false, "with --corpus: serve only records of the queried region")
	fs.StringVar(&f.format, "format", "table", "output: table or json")
	fs.StringVar(&f.data, "data", "", "keep the run in this `dir` (default: a temporary one)")
	fs.BoolVar(&f.verbose, "v", false, "log every step (JSON on stderr)")
	f.allow.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitBadInput
	}
	r, err := run(ctx, &f, stderr)
	if err != nil {
		return report(stderr, err)
	}
	if f.format == "json" {
		err = printJSON(stdout, r)
	} else {
		err = printTable(stdout, r)
	}
	if err != nil {
		return report(stderr, err)
	}
	if r.Status != core.StatusCompleted {
		return exitFailed
	}
	return exitOK
}

func run(ctx context.Context, f *runFlags, stderr io.Writer) (*core.Run, error) {
	switch {
	case f.integration == "":
		return nil, usageError("--integration FILE is required")
	case f.action == "":
		return nil, usageError("--action FILE is required")
	case f.format != "table" && f.format != "json":
		return nil, usageError("--format must be table or json, not %q", f.format)
	case f.clock != "" && f.clock != "virtual" && f.clock != "real":
		return nil, usageError("--clock must be virtual or real, not %q", f.clock)
	case len(f.corpus) == 0 && (f.faults != "" || f.regionFilter):
		return nil, usageError("--faults and --filter-region need --corpus")
	case len(f.corpus) == 0 && f.clock == "virtual":
		return nil, usageError("--clock virtual needs --corpus: real CloudTrail runs on real time")
	}
	integ, err := core.LoadIntegrationFile(f.integration)
	if err != nil {
		return nil, err
	}
	action, err := core.LoadActionFile(f.action)
	if err != nil {
		return nil, err
	}
	policy, err := f.allow.policy()
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.DiscardHandler)
	if f.verbose {
		logger = slog.New(slog.NewJSONHandler(stderr, nil))
	}

	var clk clock.Clock = clock.Real{}
	if len(f.corpus) > 0 && f.clock != "real" {
		clk = clock.NewVirtual(action.StartTime)
	}
	if len(f.corpus) > 0 {
		emu, err := startEmulator(ctx, emulatorConfig{
			corpus: f.corpus, clock: clk, deliveryDelay: f.deliveryDelay, faults: f.faults,
			regionFilter: f.regionFilter, integration: integ, logger: logger,
		})
		if err != nil {
			return nil, err
		}
		defer emu.Close()
		integ.Endpoint = emu.URL
		// The in-process emulator is this command's own endpoint: allowed without a flag.
		if policy, err = policy.With(emu.URL); err != nil {
			return nil, err
		}
		if integ.AccessKeyID == "" && integ.RoleARN == "" {
			// The emulator takes any key when none is configured; the SDK still needs one to sign.
			integ.AccessKeyID, integ.SecretAccessKey = "AKIALOCALEMULATOR000", "local-emulator-any-secret"
		}
	}

	dir := f.data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "trailproof-run-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	st, err := bolt.Open(filepath.Join(dir, "trailproof.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if integ.ID == "" {
		integ.ID = "cli-" + sanitizeID(integ.Name)
	}
	if err := putIntegration(ctx, st, integ); err != nil {
		return nil, err
	}
	srcOpts := []cloudtrail.Option{cloudtrail.WithClock(clk), cloudtrail.WithLogger(logger), cloudtrail.WithPolicy(policy),
		cloudtrail.WithUserAgent("trailproof/" + version + " run/" + action.ActionID)}
	sources := cloudtrail.NewFactory(ctx, srcOpts...)
	eng := workflow.New(st, sources, workflow.WithClock(clk), workflow.WithLogger(logger),
		workflow.WithAlertCompiler(alerts.Compiler()))
	r, err := eng.CreateRun(ctx, integ.ID, action, "")
	if err != nil {
		return nil, err
	}
	var progress workflow.Progress
	if _, real := clk.(clock.Real); real {
		progress = func(r *core.Run, next time.Duration) { printProgress(stderr, r, next) }
	}
	return eng.Execute(ctx, r.RunID, progress)
}

// putIntegration stores the integration, replacing one of the same ID from an earlier run.
func putIntegration(ctx context.Context, st core.Store, in *core.Integration) error {
	err := st.CreateIntegration(ctx, in)
	if core.ErrorCode(err) == core.ECONFLICT {
		err = st.UpdateIntegration(ctx, in)
	}
	return err
}

func sanitizeID(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// printProgress tells a person watching a real-clock run what it is doing while it waits.
func printProgress(w io.Writer, r *core.Run, next time.Duration) {
	now := time.Now().UTC().Format(time.TimeOnly)
	if r.Queries == 0 {
		fmt.Fprintf(w, "%s  waiting %s for the first query (delayTime); window %s .. %s\n", now, next.Round(time.Second),
			r.Window.From.Format(time.RFC3339), r.Window.To.Format(time.RFC3339))
		return
	}
	fmt.Fprintf(w, "%s  query %d done: %d events read, %d matched, %d LookupEvents calls; next query in %s\n",
		now, r.Queries, r.Progress.RawEvents, len(r.Events), r.APICalls, next.Round(time.Second))
}
