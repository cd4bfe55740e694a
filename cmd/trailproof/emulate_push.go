package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/push"
)

// pushFlags are emulate's push flags: EventBridge's side of CloudTrail, posting each record to a
// `trailproof serve` ingest endpoint.
type pushFlags struct {
	to     string
	delay  time.Duration
	loss   float64
	region string
}

func (p *pushFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.to, "push-to", "", "also push each record as EventBridge would to this `url` (a trailproof serve, e.g. http://127.0.0.1:8080), with the token in "+envToken)
	fs.DurationVar(&p.delay, "push-delay", 30*time.Second, "with --push-to: push each record this `delay` after its eventTime")
	fs.Float64Var(&p.loss, "push-loss", 0, "with --push-to: the `fraction` of pushes lost (best-effort delivery), chosen per record from its EventId")
	fs.StringVar(&p.region, "push-region", "us-east-1", "with --push-to: the `region` records whose awsRegion is not an AWS region (anonymised test data) are pushed from")
}

// start checks the flags and pushes the records in the background until ctx ends.
func (p *pushFlags) start(ctx context.Context, events []core.RawEvent, log *slog.Logger, stderr io.Writer) error {
	if p.to == "" {
		return nil
	}
	u, err := url.Parse(p.to)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError("--push-to must be an http(s) URL of a trailproof serve, not %q", p.to)
	}
	token := os.Getenv(envToken)
	if token == "" {
		return usageError("--push-to needs the serve's bearer token in %s", envToken)
	}
	feed, err := push.NewFeed(events, func(ev core.RawEvent) (string, string) {
		if !emulator.IsAWSRegion(ev.Region) {
			return push.AccountOf(ev), p.region
		}
		return push.AccountOf(ev), ev.Region
	}, p.delay, p.loss)
	if err != nil {
		return usageError("%s", core.ErrorMessage(err))
	}
	target := u.JoinPath("v1", "ingest").String()
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	// The token goes to the --push-to host only: the client dials nothing else and follows no
	// redirect.
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != host {
				return nil, fmt.Errorf("push: refusing to connect to %s: only --push-to %s", addr, host)
			}
			return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
		}}}
	fmt.Fprintf(stderr, "trailproof: pushing %d records to %s, %s after their eventTime (%g lost)\n", feed.Len(), target, p.delay, p.loss)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var retry [][]byte
		for {
			batch := append(retry, feed.Due(time.Now())...)
			retry = nil
			for len(batch) > 0 {
				n := min(len(batch), 100)
				if err := postBatch(ctx, client, target, token, batch[:n]); err != nil {
					log.Warn("push failed; retrying in a second", "url", target, "error", err.Error())
					retry = batch
					break
				}
				batch = batch[n:]
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return nil
}

// postBatch posts envelopes as one JSON array.
func postBatch(ctx context.Context, client *http.Client, target, token string, envelopes [][]byte) error {
	body := append([]byte("["), bytes.Join(envelopes, []byte(","))...)
	body = append(body, ']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
