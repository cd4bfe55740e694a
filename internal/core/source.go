package core

import (
	"context"
	"time"
)

// Lookup attribute keys accepted by LookupEvents (one per call).
const (
	AttrEventID      = "EventId"
	AttrEventName    = "EventName"
	AttrReadOnly     = "ReadOnly"
	AttrUsername     = "Username"
	AttrResourceType = "ResourceType"
	AttrResourceName = "ResourceName"
	AttrEventSource  = "EventSource"
	AttrAccessKeyID  = "AccessKeyId"
)

// History is how far back LookupEvents reads management events: CloudTrail keeps 90 days.
const History = 90 * 24 * time.Hour

// Category values for a query.
const (
	CategoryManagement = ""
	CategoryInsight    = "insight"
)

// LookupAttribute narrows a query server-side.
type LookupAttribute struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Query is one bounded read of CloudTrail: events with an event time in [From, To].
type Query struct {
	Region    string
	Category  string
	From, To  time.Time
	Attribute *LookupAttribute
	// Budget is the most events to read (pageSize x maxPage); 0 means no limit.
	Budget int
	// StopAt, when set, is when the step reading must stop (its Lambda's deadline less a margin,
	// on the source's clock): no call starts, or waits for the rate budget, past it, and a call
	// running then is cut off. The result is then Stopped, like Truncated.
	StopAt time.Time
	// WaitUntil, when set, bounds only the waits for the rate budget (and between retries): a
	// call whose turn comes at or after it is not made, and the result is Stopped; a call made
	// keeps its full timeout. The connectivity test says "busy" then.
	WaitUntil time.Time
	// Page, when set, receives each page's events as it arrives (to store them at once, so a
	// step cut off keeps what it read); the result's Events then stays empty.
	Page func(ctx context.Context, events []RawEvent) error
}

// QueryResult is what a query read and what it cost.
type QueryResult struct {
	Events    []RawEvent
	Calls     int  // LookupEvents calls made, retries included
	Throttled int  // calls answered with ThrottlingException
	Truncated bool // the budget ran out before the span was read to its end
	Stopped   bool // StopAt came before the span was read to its end
	Read      int  // distinct events read
	// OldestRead is the oldest event time reached when Truncated or Stopped: [OldestRead, To] was
	// read fully (To itself when nothing was read).
	OldestRead time.Time
}

// Source reads CloudTrail for one integration.
type Source interface {
	Lookup(ctx context.Context, q Query) (QueryResult, error)
}

// SourceFactory makes the Source of an integration (credentials, endpoint, rate limiter).
type SourceFactory interface {
	Source(ctx context.Context, in *Integration) (Source, error)
}
