package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// printJSON writes the full run result.
func printJSON(w io.Writer, r *core.Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(publicRun(r))
}

// publicRun drops the workflow's bookkeeping from a run for output.
func publicRun(r *core.Run) any {
	type out struct {
		*core.Run
		Progress *struct{} `json:"progress,omitempty"`
		Version  *struct{} `json:"version,omitempty"`
		Action   *struct{} `json:"action,omitempty"`
	}
	return out{Run: r}
}

// verdictLine says the verdict in words. A run that could not decide says why, and never "not
// logged": a person copies this line into an audit.
func verdictLine(r *core.Run) string {
	var v string
	switch r.Verdict {
	case core.VerdictLogged:
		v = "LOGGED"
	case core.VerdictNotLogged:
		v = "NOT LOGGED"
	default:
		v = "UNKNOWN"
		switch r.Status {
		case core.StatusFailed:
			v += " — the run failed: " + dash(r.Error)
		case core.StatusCancelled:
			v += " — the run was cancelled"
		default:
			v += " — the run is still " + r.Status
		}
		if r.IsLogged() {
			v += fmt.Sprintf(" (%d events had matched)", len(r.Events))
		}
		return v
	}
	if r.Alerted != nil {
		v += ", " + yesNo(*r.Alerted, "ALERTED", "not alerted")
	}
	if r.WeakMatch {
		v += "  (weak match: expected event names only)"
	}
	return v
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// printTable writes a person's view of the run: the verdict first, then the evidence.
func printTable(w io.Writer, r *core.Run) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Run        %s  (job %s, action %s, integration %s)\n", r.RunID, r.JobID, r.ActionID, r.Integration)
	fmt.Fprintf(&b, "Verdict    %s\n", verdictLine(r))
	fmt.Fprintf(&b, "Status     %s", r.Status) // a failure's cause is on the verdict line
	fmt.Fprintf(&b, "  (%d queries, %d LookupEvents calls, %d throttled)\n", r.Queries, r.APICalls, r.Throttled)
	fmt.Fprintf(&b, "Window     %s .. %s\n", r.Window.From.Format(time.RFC3339), r.Window.To.Format(time.RFC3339))
	for i, sn := range r.Sensors {
		label := "Sensors   "
		if i > 0 {
			label = "          "
		}
		fmt.Fprintf(&b, "%s %s  %s %s (%s, %s)\n", label, sn.UUID, sn.AccountID, sn.Region, sn.Vendor, sn.Product)
	}
	if len(r.Expected) > 0 {
		var parts []string
		for _, e := range r.Expected {
			missing := "MISSING"
			if r.Status != core.StatusCompleted {
				missing = "not found yet" // a run that has not completed cannot call it missing
			}
			parts = append(parts, fmt.Sprintf("%s %d %s", e.Event, e.Count, yesNo(e.Count > 0, "found", missing)))
		}
		fmt.Fprintf(&b, "Expected   %s\n", strings.Join(parts, "; "))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	sections := []struct {
		title string
		evs   []core.Event
		last  string
	}{
		{"Matched events", r.Events, "MATCHED ON"},
		{"Alerts", r.Alerts, "RAISED BY"},
		{"Suspicious events", r.Suspicious, "WHY"},
	}
	for _, s := range sections {
		if len(s.evs) == 0 && s.title != "Matched events" {
			continue
		}
		title := s.title
		if s.title == "Matched events" && r.Truncated {
			title += " (limit reached)"
		}
		fmt.Fprintf(w, "\n%s: %d\n", title, len(s.evs))
		if len(s.evs) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "TIME\tEVENT\tUSER\tSOURCE IP\tERROR\t%s\n", s.last)
		for _, e := range s.evs {
			last := strings.Join(e.MatchedOn, ",")
			switch s.title {
			case "Alerts":
				last = e.RaisedBy
			case "Suspicious events":
				last = e.Reason
			}
			fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\t%s\t%s\n", e.EventTime.Format(time.RFC3339), strings.TrimSuffix(e.EventSource, ".amazonaws.com"),
				e.EventName, shorten(e.User, 72), e.SrcIP, dash(e.ErrorCode), last)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w, "\nWarnings:")
		for _, x := range r.Warnings {
			fmt.Fprintln(w, "  -", x)
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
