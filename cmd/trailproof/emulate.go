package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/push"
)

// deliveryDelayUsage describes --delivery-delay, shared by run --corpus and emulate.
const deliveryDelayUsage = "when a record becomes visible after its eventTime: a `delay` (5m), or most records' delay and late shares (5m,12m@0.1: a tenth 12 minutes late, chosen per record from its EventId)"

type emulatorConfig struct {
	corpus        []string
	addr          string
	clock         clock.Clock
	deliveryDelay emulator.Delays
	rate          float64
	faults        string
	anyRegion     bool              // serve every record to every region
	history       time.Duration     // how far back records are served (CloudTrail: 90 days; 0: all)
	unsigned      bool              // answer calls without a SigV4 Authorization header
	keys          multiFlag         // ID:SECRET, the only keys the emulator knows
	integration   *core.Integration // when set, its access key is the emulator's only known key
	window        *core.Window      // when set, count the records within a day of it
	logger        *slog.Logger
}

// runningEmulator is an emulator listening on loopback.
type runningEmulator struct {
	*emulator.Emulator
	URL string
	srv *emulator.Server
	// Near counts, by awsRegion, the records within a day of the config's window.
	Near map[string]int
	// Old counts the records older than the history on the emulator's clock at start.
	Old int
	// Events are the corpus's records, as loaded.
	Events []core.RawEvent
}

// Close stops the listener.
func (r *runningEmulator) Close() error { return r.srv.Close() }

// startEmulator loads the corpus and serves it over HTTP on loopback.
func startEmulator(_ context.Context, c emulatorConfig) (*runningEmulator, error) {
	events, _, err := corpus.LoadWithOptions(corpus.Options{Logger: c.logger}, c.corpus...)
	if err != nil {
		return nil, err
	}
	opts := []emulator.Option{emulator.WithClock(c.clock), emulator.WithDeliveryDelays(c.deliveryDelay),
		emulator.WithAnyRegion(c.anyRegion), emulator.WithHistory(c.history), emulator.WithUnsigned(c.unsigned),
		emulator.WithLogger(c.logger)}
	if c.rate > 0 {
		opts = append(opts, emulator.WithRate(c.rate))
	}
	if c.faults != "" {
		f, err := emulator.ParseFaults(c.faults)
		if err != nil {
			return nil, err
		}
		opts = append(opts, emulator.WithFaults(f))
	}
	var keys []emulator.Key
	if in := c.integration; in != nil && in.AccessKeyID != "" {
		// Its account, which sts:GetCallerIdentity answers, is the corpus's when it has one.
		keys = append(keys, emulator.Key{AccessKeyID: in.AccessKeyID, SecretAccessKey: in.SecretAccessKey, AccountID: soleAccount(events)})
	}
	for _, k := range c.keys {
		id, secret, ok := strings.Cut(k, ":")
		if !ok || id == "" || secret == "" {
			return nil, usageError("--key must be ACCESS_KEY_ID:SECRET_ACCESS_KEY")
		}
		keys = append(keys, emulator.Key{AccessKeyID: id, SecretAccessKey: core.Secret(secret)})
	}
	if len(keys) > 0 {
		opts = append(opts, emulator.WithKeys(keys...))
	}
	em, err := emulator.New(events, opts...)
	if err != nil {
		return nil, err
	}
	srv, err := emulator.Serve(em, c.addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	near := map[string]int{}
	if w := c.window; w != nil {
		for _, ev := range events {
			if !ev.EventTime.Before(w.From.Add(-24*time.Hour)) && !ev.EventTime.After(w.To.Add(24*time.Hour)) {
				near[ev.Region]++
			}
		}
	}
	old := 0
	if c.history > 0 {
		for _, ev := range events {
			if ev.EventTime.Before(c.clock.Now().Add(-c.history)) {
				old++
			}
		}
	}
	return &runningEmulator{Emulator: em, URL: srv.URL(), srv: srv, Near: near, Old: old, Events: events}, nil
}

// emulatorFlags are the flags that relax the emulator's CloudTrail rules, shared by run and emulate.
func emulatorFlags(fs *flag.FlagSet, c *emulatorConfig) {
	fs.BoolVar(&c.anyRegion, "any-region", false, "serve every record to a query in any region (CloudTrail serves a region its own records)")
	fs.DurationVar(&c.history, "history", core.History, "serve records this far back from the emulator's clock (CloudTrail keeps 90 days); 0 serves all")
}

func cmdEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c emulatorConfig
	var corpusPaths multiFlag
	var pf pushFlags
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&corpusPaths, "corpus", "CloudTrail records `path` (file or folder); repeatable")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:0", "listen `address`")
	fs.Float64Var(&c.rate, "rate", emulator.DefaultRate, "LookupEvents calls per second per access key and region")
	c.deliveryDelay = emulator.FixedDelay(emulator.DefaultDeliveryDelay)
	fs.Var(&c.deliveryDelay, "delivery-delay", deliveryDelayUsage)
	fs.StringVar(&c.faults, "faults", "", "injected faults, e.g. throttle=0.3,error=0.1,slow=2s,dup=0.1")
	emulatorFlags(fs, &c)
	fs.Var(&c.keys, "key", "an access key `ID:SECRET` the emulator knows (repeatable); others are refused, and signatures are checked with the secret")
	fs.BoolVar(&c.unsigned, "unsigned", false, "answer calls without a SigV4 Authorization header (AWS refuses them)")
	pf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(corpusPaths) == 0 {
		return usageError("--corpus PATH is required")
	}
	c.corpus, c.clock = corpusPaths, clock.Real{}
	c.logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	em, err := startEmulator(ctx, c)
	if err != nil {
		return err
	}
	defer em.Close()
	if err := pf.start(ctx, em.Events, c.logger, stderr); err != nil {
		return err
	}
	rules := []string{"each region its own records", fmt.Sprintf("the last %g days", c.history.Hours()/24), "SigV4 required"}
	if c.anyRegion {
		rules[0] = "every record to every region (--any-region)"
	}
	if c.history == 0 {
		rules[1] = "all history (--history 0)"
	}
	if c.unsigned {
		rules[2] = "unsigned calls answered (--unsigned)"
	}
	if len(c.keys) > 0 {
		rules = append(rules, fmt.Sprintf("%d known keys, signatures checked", len(c.keys)))
	}
	fmt.Fprintf(stdout, "CloudTrail emulator serving %d records at %s (rate %g/s, delivery delay %s; %s); Ctrl-C stops it\n",
		em.Len(), em.URL, c.rate, c.deliveryDelay, strings.Join(rules, ", "))
	if em.Old > 0 {
		fmt.Fprintf(stderr, "trailproof: warning: %d of the records are older than the %g days served, as CloudTrail keeps no more; --history 0 serves them\n",
			em.Old, c.history.Hours()/24)
	}
	<-ctx.Done()
	return nil
}

// soleAccount is the one account the records belong to, or "" when they name none or several.
func soleAccount(events []core.RawEvent) string {
	account := ""
	for _, ev := range events {
		switch a := push.AccountOf(ev); {
		case a == "" || a == account:
		case account == "":
			account = a
		default:
			return ""
		}
	}
	return account
}
