// Command benchgrid measures what one trailproof run costs as the correlation window and the
// account's noise grow: for each cell of a grid (queryTime 5, 30 and 120 minutes x 10, 100 and
// 1,000 background events a minute), with and without expected events, it replays a few real
// Stratus Red Team detonations (one run each, its user-agent token as the actor) over a busy
// account generated from the TrailDiscover records at the cell's rate, through the path
// `trailproof run --corpus` takes: the strict CloudTrail emulator over HTTP (SigV4, the
// integration's key, a region its own records, 2 calls/s, -delivery-delay late), a virtual clock,
// a bolt store, workflow.Engine.Execute. `make bench-grid` runs it.
//
// Per cell it reports LookupEvents calls per run next to the one-read lower bound (ceil(events
// in the run's read range / 50) per region queried, 1 for an empty read), recall (the share of
// each action's own events its run matched), verdict latency (from the action's last event
// becoming searchable to completion and to loggedAt), CPU seconds per run, and memory: the
// engine's peak live heap above the loaded corpus (runtime/metrics, sampled every few
// milliseconds, no forced GC while a run runs) and the process's peak RSS (getrusage maxrss,
// corpus included). Each cell runs in a child process (the command re-executing itself with
// -cell), so maxrss and CPU are the cell's own; a cell that outlasts -timeout stops and is
// reported as "timeout" with the runs it measured. It prints one JSON line per cell, then a
// Markdown table.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/trailproof/trailproof/internal/emulator"
)

// defaultCells is the grid: queryTime minutes x background events a minute.
const defaultCells = "5x10,5x100,5x1000,30x10,30x100,30x1000,120x10,120x100,120x1000"

// defaultActions are the detonations replayed in every cell: a short burst, a long one with
// many events, and an IAM one.
const defaultActions = "aws.credential-access.ec2-get-password-data,aws.execution.ssm-send-command,aws.persistence.iam-create-admin-user"

// options are the flags a cell is measured with, passed on to its child.
type options struct {
	data     string
	actions  string
	delivery emulator.Delays
	timeout  time.Duration
}

func main() {
	o := options{delivery: emulator.FixedDelay(emulator.DefaultDeliveryDelay)}
	var (
		cells    = flag.String("cells", defaultCells, "cells to measure, comma-separated `QUERYTIMExRATE` (queryTime minutes x background events a minute)")
		expected = flag.String("expected", "both", "give each action its detonation's event names as expectedEvents: true, false or both (a row each)")
		cell     = flag.String("cell", "", "measure this one cell in this process and print its JSON line (what the grid's child processes do)")
		withExp  = flag.Bool("with-expected", false, "with -cell: the actions carry expectedEvents")
	)
	flag.StringVar(&o.data, "data", "", "folder of the shared CloudTrail records (default: ../shared/data/cloudtrail beside the repository)")
	flag.StringVar(&o.actions, "actions", defaultActions, "Stratus detonations replayed in each cell (file names without .json), comma-separated")
	flag.Var(&o.delivery, "delivery-delay", "time from an event to its being searchable: a `delay` (5m), or most records' delay and late shares (5m,12m@0.1)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "a cell stops after this `duration` and is reported as timeout with the runs it measured (its child is killed 30 s later if it has not stopped)")
	flag.Parse()
	ctx := context.Background()
	if *cell != "" {
		if err := child(ctx, os.Stdout, *cell, *withExp, o); err != nil {
			fmt.Fprintln(os.Stderr, "benchgrid:", err)
			os.Exit(1)
		}
		return
	}
	if err := grid(ctx, os.Stdout, *cells, *expected, o); err != nil {
		fmt.Fprintln(os.Stderr, "benchgrid:", err)
		os.Exit(1)
	}
}

// child measures one cell and prints its Result.
func child(ctx context.Context, w io.Writer, spec string, expected bool, o options) error {
	c, err := parseCell(spec)
	if err != nil {
		return err
	}
	res, err := measure(ctx, c, expected, o)
	if err != nil {
		return fmt.Errorf("cell %s: %w", spec, err)
	}
	return json.NewEncoder(w).Encode(res)
}

// grid measures every cell in a child process of its own, printing each JSON line as it comes
// and the table at the end.
func grid(ctx context.Context, w io.Writer, cells, expected string, o options) error {
	cs, err := parseCells(cells)
	if err != nil {
		return err
	}
	var exps []bool
	switch expected {
	case "false":
		exps = []bool{false}
	case "true":
		exps = []bool{true}
	case "both":
		exps = []bool{false, true}
	default:
		return fmt.Errorf("-expected must be true, false or both, not %q", expected)
	}
	if _, _, err := loadActions(o); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now()
	enc := json.NewEncoder(w)
	var results []Result
	for _, c := range cs {
		for _, exp := range exps {
			r := runChild(ctx, exe, c, exp, o)
			if err := enc.Encode(r); err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	fmt.Fprintln(w)
	writeTable(w, results)
	fmt.Fprintf(w, "\n%d cells in %s (delivery %s, actions %s)\n", len(results), time.Since(start).Round(time.Second), o.delivery, o.actions)
	return nil
}
