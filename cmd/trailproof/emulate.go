package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
)

type emulatorConfig struct {
	corpus        []string
	addr          string
	clock         clock.Clock
	deliveryDelay time.Duration
	rate          float64
	faults        string
	regionFilter  bool
	integration   *core.Integration // when set, its access key is the emulator's only known key
	logger        *slog.Logger
}

// runningEmulator is an emulator listening on loopback.
type runningEmulator struct {
	*emulator.Emulator
	URL string
	srv *emulator.Server
}

// Close stops the listener.
func (r *runningEmulator) Close() error { return r.srv.Close() }

// startEmulator loads the corpus and serves it over HTTP on loopback.
func startEmulator(_ context.Context, c emulatorConfig) (*runningEmulator, error) {
	events, _, err := corpus.LoadWithOptions(corpus.Options{Logger: c.logger}, c.corpus...)
	if err != nil {
		return nil, err
	}
	opts := []emulator.Option{emulator.WithClock(c.clock), emulator.WithDeliveryDelay(c.deliveryDelay),
		emulator.WithRegionFilter(c.regionFilter), emulator.WithLogger(c.logger)}
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
	if in := c.integration; in != nil && in.AccessKeyID != "" {
		opts = append(opts, emulator.WithKeys(emulator.Key{AccessKeyID: in.AccessKeyID, SecretAccessKey: in.SecretAccessKey}))
	}
	em, err := emulator.New(events, opts...)
	if err != nil {
		return nil, err
	}
	srv, err := emulator.Serve(em, c.addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	return &runningEmulator{Emulator: em, URL: srv.URL(), srv: srv}, nil
}

func cmdEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c emulatorConfig
	var corpusPaths multiFlag
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&corpusPaths, "corpus", "CloudTrail records `path` (file or folder); repeatable")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:0", "listen `address`")
	fs.Float64Var(&c.rate, "rate", emulator.DefaultRate, "LookupEvents calls per second per access key and region")
	fs.DurationVar(&c.deliveryDelay, "delivery-delay", emulator.DefaultDeliveryDelay, "when a record becomes visible after its eventTime")
	fs.StringVar(&c.faults, "faults", "", "injected faults, e.g. throttle=0.3,error=0.1,slow=2s,dup=0.1")
	fs.BoolVar(&c.regionFilter, "filter-region", false, "serve only records of the queried region")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
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
	fmt.Fprintf(stdout, "CloudTrail emulator serving %d records at %s (rate %g/s, delivery delay %s); Ctrl-C stops it\n",
		em.Len(), em.URL, c.rate, c.deliveryDelay)
	<-ctx.Done()
	return nil
}
