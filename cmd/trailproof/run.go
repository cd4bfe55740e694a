package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/push"
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
	deliveryDelay         emulator.Delays
	pushDelay             time.Duration // 0: no push
	pushLoss              float64
	emu                   emulatorConfig // the flags that relax the emulator's CloudTrail rules
	data                  string
	verbose, quiet        bool
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
	f.deliveryDelay = emulator.FixedDelay(emulator.DefaultDeliveryDelay)
	fs.Var(&f.deliveryDelay, "delivery-delay", "with --corpus: "+deliveryDelayUsage)
	fs.DurationVar(&f.pushDelay, "push-delay", 0, "with --corpus: also push each record as EventBridge would, this `delay` after its eventTime (0: no push)")
	fs.Float64Var(&f.pushLoss, "push-loss", 0, "with --push-delay: the `fraction` of pushes lost (best-effort delivery), chosen per record from its EventId")
	fs.StringVar(&f.faults, "faults", "", "with --corpus: injected faults, e.g. throttle=0.3,error=0.1,slow=2s,dup=0.1")
	emulatorFlags(fs, &f.emu)
	fs.StringVar(&f.format, "format", "table", "output: table or json")
	fs.StringVar(&f.data, "data", "", "keep the run in this `dir` (default: a temporary one)")
	fs.BoolVar(&f.verbose, "v", false, "log every step (JSON on stderr)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress on stderr while a real-clock run waits")
	f.allow.register(fs)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitBadInput // the flag package has said what is wrong
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
	case len(f.corpus) == 0 && (f.faults != "" || f.emu.anyRegion || f.emu.history != core.History):
		return nil, usageError("--faults, --any-region and --history need --corpus")
	case len(f.corpus) == 0 && f.pushDelay != 0:
		return nil, usageError("--push-delay needs --corpus: against real CloudTrail, push comes through EventBridge (see README)")
	case f.pushLoss != 0 && f.pushDelay == 0:
		return nil, usageError("--push-loss needs --push-delay")
	case f.pushDelay < 0:
		return nil, usageError("--push-delay must not be negative, not %s", f.pushDelay)
	case f.pushLoss < 0 || f.pushLoss > 1:
		return nil, usageError("--push-loss must be a fraction between 0 and 1, not %g", f.pushLoss)
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
	var notes []string
	var emu *runningEmulator
	var clk clock.Clock = clock.Real{}
	if len(f.corpus) > 0 && f.clock != "real" {
		clk = clock.NewVirtual(action.StartTime)
	}
	_, realClock := clk.(clock.Real)
	var view *progressView
	if realClock && !f.quiet {
		view = newProgressView(stderr, isTerminal(stderr))
		defer view.close()
	}
	logger := slog.New(slog.DiscardHandler)
	switch {
	case f.verbose:
		logger = slog.New(slog.NewJSONHandler(stderr, nil))
	case view != nil:
		logger = slog.New(failureHandler{view: view}) // retried failures at once
	}
	if len(f.corpus) > 0 {
		window := core.NewCorrelator(integ, action).Window()
		cfg := f.emu
		cfg.corpus, cfg.clock, cfg.deliveryDelay, cfg.faults = f.corpus, clk, f.deliveryDelay, f.faults
		cfg.integration, cfg.window, cfg.logger = integ, &window, logger
		emu, err = startEmulator(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer emu.Close()
		if realClock && cfg.history > 0 && window.To.Before(time.Now().Add(-cfg.history)) {
			notes = append(notes, fmt.Sprintf("on the real clock the window %s .. %s is older than the emulator's %s history, as CloudTrail's would be: use the virtual clock or --history 0",
				window.From.Format(time.RFC3339), window.To.Format(time.RFC3339), cfg.history))
		}
		notes = append(notes, corpusNotes(f.corpus, emu.Near, window, integ.QueryRegions(action), cfg.anyRegion)...)
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
	db, err := bolt.Open(filepath.Join(dir, "trailproof.db"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var st core.Store = db
	if f.pushDelay > 0 {
		feed, err := push.NewFeed(emu.Events, func(ev core.RawEvent) (string, string) {
			// A record the emulator serves to every region is pushed from the integration's.
			if f.emu.anyRegion || !emulator.IsAWSRegion(ev.Region) {
				return push.AccountOf(ev), integ.AWSRegion
			}
			return push.AccountOf(ev), ev.Region
		}, f.pushDelay, f.pushLoss)
		if err != nil {
			return nil, err
		}
		st = &push.Store{Store: db, Feed: feed, Now: clk.Now}
	}
	if integ.ID == "" {
		integ.ID = "cli-" + sanitizeID(integ.Name)
	}
	if err := putIntegration(ctx, st, integ); err != nil {
		return nil, err
	}
	srcOpts := []cloudtrail.Option{cloudtrail.WithClock(clk), cloudtrail.WithLogger(logger), cloudtrail.WithPolicy(policy),
		cloudtrail.WithUserAgent("trailproof/" + version + " run/" + action.ActionID)}
	sources := cloudtrail.NewFactory(ctx, srcOpts...)
	engOpts := []workflow.Option{workflow.WithClock(clk), workflow.WithLogger(logger), workflow.WithAlertCompiler(alerts.Compiler())}
	if f.pushDelay > 0 {
		engOpts = append(engOpts, workflow.WithPush())
	}
	eng := workflow.New(st, sources, engOpts...)
	r, err := eng.CreateRun(ctx, integ.ID, action, "")
	if core.ErrorField(err) == "startTime" {
		return nil, core.InFile(f.action, err) // outside CloudTrail's history: name the action file
	}
	if err != nil {
		return nil, err
	}
	if len(notes) > 0 {
		if r, err = eng.AddNotes(ctx, r.RunID, notes...); err != nil {
			return nil, err
		}
		for _, n := range notes {
			fmt.Fprintln(stderr, "trailproof: warning:", n)
		}
	}
	var progress workflow.Progress
	if view != nil {
		progress = view.update
	}
	r, err = eng.Execute(ctx, r.RunID, progress)
	if err != nil || emu == nil {
		return r, err
	}
	if n := emu.ServedAnyRegion(); n > 0 {
		// Public test data anonymises regions; CloudTrail would not have served these records
		// to the integration's region.
		note := fmt.Sprintf("%d records of the corpus have an awsRegion that is not an AWS region (anonymised test data) and were served regardless of region: "+
			"against a real account, a query in %s finds only that region's records", n, integ.AWSRegion)
		fmt.Fprintln(stderr, "trailproof: warning:", note)
		return eng.AddNotes(ctx, r.RunID, note)
	}
	return r, nil
}

// corpusNotes warns about a corpus the run can find nothing in: no record within a day of the
// window, or none of the regions the run queries (CloudTrail serves a region its own records).
func corpusNotes(paths []string, near map[string]int, w core.Window, regions []string, anyRegion bool) []string {
	total, served := 0, 0
	var others []string
	for region, n := range near {
		total += n
		if anyRegion || slices.Contains(regions, region) || !emulator.IsAWSRegion(region) {
			served += n
		} else {
			others = append(others, region)
		}
	}
	span := w.From.Format(time.RFC3339) + " .. " + w.To.Format(time.RFC3339)
	switch {
	case total == 0:
		return []string{fmt.Sprintf("the corpus (%s) holds no record within a day of the window %s: the run can only find nothing",
			strings.Join(paths, ", "), span)}
	case served == 0:
		slices.Sort(others)
		return []string{fmt.Sprintf("the corpus holds %d records within a day of the window %s, all of other regions (%s) than the run queries (%s): CloudTrail serves a query only its own region's records",
			total, span, strings.Join(others, ", "), strings.Join(regions, ", "))}
	}
	return nil
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
