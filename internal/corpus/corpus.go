// Package corpus loads recorded CloudTrail records from files and folders, in the shapes they are
// published in (trail files, exports, LookupEvents output, JSON lines, gzip), into core.RawEvent
// values: the input of the CloudTrail emulator and of offline tests.
package corpus

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/core"
)

// Extensions are the file name endings a folder walk loads (case-insensitive). TrailDiscover's
// files end in ".json.cloudtrail", so ".cloudtrail" is one of them. Files named explicitly are
// loaded whatever their name.
var Extensions = []string{".json", ".jsonl", ".ndjson", ".gz", ".cloudtrail"}

// Options tune a load. The zero value is strict: the first bad record fails the load.
type Options struct {
	// SkipInvalid skips records that cannot be used (no event time, unparsable time, a broken
	// CloudTrailEvent) and lists them in Report.Invalid instead of failing the load. Syntax errors
	// still fail it: a file that is not JSON is not a corpus.
	SkipInvalid bool
	// Logger receives a line for each skipped file or record; nil discards them.
	Logger *slog.Logger
}

// Report says what a load read and what it left out, so a user can tell why a count differs from
// the number of records in the files.
type Report struct {
	Files      int // files read
	Records    int // records found, duplicates included
	Duplicates int // records dropped because an earlier one had the same EventID
	// Conflicts counts the duplicates whose record differed from the one kept: hand-edited test
	// sets (Panther's) reuse event ids, and a user should know that records were lost.
	Conflicts    int
	SkippedFiles []string // files in folders that hold no CloudTrail records (metadata, indexes)
	Invalid      []error  // records skipped under Options.SkipInvalid, each a *core.Error
}

// Load reads CloudTrail records from files and folders (walked recursively, loading files with one
// of Extensions). A file may hold a JSON array of records, {"Records": [...]}, a LookupEvents
// response {"Events": [...]}, a single record, or JSON lines; records may be plain CloudTrail
// records, LookupEvents events (CloudTrailEvent as a JSON string) or wrapped under "log"; any file
// may be gzip-compressed. Records are returned in the order read, one per EventID. RawEvent.Region
// is the record's awsRegion, the region a trail would have read it from.
//
// Bad input gives a *core.Error (core.EINVALID) whose File is the file and whose message gives the
// line (and column and byte offset in a JSON document) and the field.
func Load(paths ...string) ([]core.RawEvent, error) {
	evs, _, err := LoadWithOptions(Options{}, paths...)
	return evs, err
}

// LoadWithOptions is Load with options, and a report of what was read.
func LoadWithOptions(opts Options, paths ...string) ([]core.RawEvent, Report, error) {
	l := &loader{opts: opts, seen: map[string][32]byte{}}
	if l.opts.Logger == nil {
		l.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if len(paths) == 0 {
		return nil, l.rep, &core.Error{Code: core.EINVALID, Field: "corpus", Message: "no corpus path given"}
	}
	for _, p := range paths {
		before := l.rep.Records
		if err := l.path(p); err != nil {
			return nil, l.rep, err
		}
		if l.rep.Records == before {
			// An empty corpus would let every run end "not logged" without having had
			// anything to look at.
			return nil, l.rep, &core.Error{Code: core.EINVALID, File: p, Field: "corpus",
				Message: "holds no CloudTrail records (an empty file or folder, or an empty Records list); give a corpus with records"}
		}
	}
	return l.out, l.rep, nil
}

// Parse reads the records in data as if it were the file name (used in error messages). Unlike a
// folder walk it fails on JSON that holds no CloudTrail records.
func Parse(name string, data []byte) ([]core.RawEvent, error) {
	l := &loader{opts: Options{Logger: slog.New(slog.DiscardHandler)}, seen: map[string][32]byte{}}
	if err := l.data(name, data, false); err != nil {
		return nil, err
	}
	return l.out, nil
}

type loader struct {
	opts Options
	seen map[string][32]byte // record hash by EventID
	out  []core.RawEvent
	rep  Report
}

func (l *loader) path(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return &core.Error{Code: core.EINVALID, File: p, Message: "cannot read corpus: " + errText(err), Err: err}
	}
	if !fi.IsDir() {
		return l.file(p, false)
	}
	return filepath.WalkDir(p, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return &core.Error{Code: core.EINVALID, File: name, Message: "cannot read corpus: " + errText(err), Err: err}
		}
		if d.IsDir() {
			if name != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") || !hasExtension(d.Name()) {
			return nil
		}
		return l.file(name, true)
	})
}

func hasExtension(name string) bool {
	lower := strings.ToLower(name)
	for _, ext := range Extensions {
		if strings.HasSuffix(lower, ext) {
			return true
		}
	}
	return false
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (l *loader) file(name string, inFolder bool) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return &core.Error{Code: core.EINVALID, File: name, Message: "cannot read corpus: " + errText(err), Err: err}
	}
	return l.data(name, data, inFolder)
}

// item is one candidate record and where it starts, for error messages.
type item struct {
	val gjson.Result
	pos string
}

func (l *loader) data(name string, data []byte, inFolder bool) error {
	l.rep.Files++
	data, err := gunzip(data)
	if err != nil {
		return &core.Error{Code: core.EINVALID, File: name, Message: "not valid gzip: " + err.Error(), Err: err}
	}
	items, err := split(data)
	if err != nil {
		return core.InFile(name, err)
	}
	if len(items) > 0 && !anyRecord(items) {
		if inFolder {
			// Dataset folders carry indexes and metadata next to the records; they are not input.
			l.rep.SkippedFiles = append(l.rep.SkippedFiles, name)
			l.opts.Logger.Info("corpus file holds no CloudTrail records; skipped", "file", name)
			return nil
		}
		return &core.Error{Code: core.EINVALID, File: name,
			Message: items[0].pos + ": no CloudTrail records: expected eventTime, @timestamp or a LookupEvents CloudTrailEvent"}
	}
	for i, it := range items {
		ev, err := toRawEvent(it.val)
		if err != nil {
			e := &core.Error{Code: core.EINVALID, File: name, Message: fmt.Sprintf("%s: record %d: %v", it.pos, i+1, err)}
			if l.opts.SkipInvalid {
				l.rep.Invalid = append(l.rep.Invalid, e)
				l.opts.Logger.Warn("invalid corpus record skipped", "file", name, "error", e.Message)
				continue
			}
			return e
		}
		l.rep.Records++
		sum := sha256.Sum256(ev.Record)
		if kept, ok := l.seen[ev.EventID]; ok {
			l.rep.Duplicates++
			if kept != sum {
				l.rep.Conflicts++
				l.opts.Logger.Warn("corpus record dropped: another record has the same eventID", "file", name, "eventId", ev.EventID)
			}
			continue
		}
		l.seen[ev.EventID] = sum
		l.out = append(l.out, ev)
	}
	return nil
}

// gunzip decompresses data when it starts with gzip's magic bytes, whatever the file is called.
func gunzip(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

// split finds the candidate records of a file: the elements of a JSON array, of "Records" or of
// "Events", a single object, or the lines of JSON lines.
func split(data []byte) ([]item, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	start := len(data) - len(bytes.TrimLeft(data, " \t\r\n"))
	if start == len(data) {
		return nil, nil
	}
	if c := data[start]; c != '[' && c != '{' {
		line, col := lineCol(data, start)
		return nil, core.Errorf(core.EINVALID, "line %d, column %d (byte %d): not JSON: expected '[', '{' or JSON lines", line, col, start)
	}
	if gjson.ValidBytes(data) {
		return splitDocument(data), nil
	}
	if data[start] == '{' {
		first := data[start:]
		if i := bytes.IndexByte(first, '\n'); i >= 0 {
			first = first[:i]
		}
		if gjson.ValidBytes(first) {
			return splitLines(data)
		}
	}
	return nil, syntaxError(data, "")
}

func splitDocument(data []byte) []item {
	doc := gjson.ParseBytes(data)
	list := doc
	if doc.IsObject() {
		switch {
		case doc.Get("Records").IsArray():
			list = doc.Get("Records")
		case doc.Get("Events").IsArray() && !isRecord(doc):
			list = doc.Get("Events")
		default:
			line, col := lineCol(data, doc.Index+firstNonSpace(doc.Raw))
			return []item{{val: doc, pos: fmt.Sprintf("line %d, column %d", line, col)}}
		}
	}
	var items []item
	list.ForEach(func(_, v gjson.Result) bool {
		line, col := lineCol(data, v.Index)
		items = append(items, item{val: v, pos: fmt.Sprintf("line %d, column %d (byte %d)", line, col, v.Index)})
		return true
	})
	return items
}

func firstNonSpace(s string) int {
	return len(s) - len(strings.TrimLeft(s, " \t\r\n"))
}

func splitLines(data []byte) ([]item, error) {
	var items []item
	offset := 0
	for n := 1; offset < len(data); n++ {
		end := bytes.IndexByte(data[offset:], '\n')
		if end < 0 {
			end = len(data) - offset
		}
		line := bytes.TrimRight(data[offset:offset+end], " \t\r")
		if len(bytes.TrimSpace(line)) > 0 {
			if !gjson.ValidBytes(line) {
				return nil, syntaxError(line, fmt.Sprintf("line %d", n))
			}
			items = append(items, item{val: gjson.ParseBytes(line), pos: fmt.Sprintf("line %d", n)})
		}
		offset += end + 1
	}
	return items, nil
}

// syntaxError locates a JSON syntax error with encoding/json, which reports the byte offset that
// gjson's validator does not. In JSON lines, where says which line data is.
func syntaxError(data []byte, where string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	err := dec.Decode(&v)
	msg := "not valid JSON"
	offset := len(data)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		msg, offset = se.Error(), int(se.Offset)
		if offset > 0 {
			offset-- // Offset counts the bad byte as read
		}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		msg = "unexpected end of JSON"
	case err == nil:
		msg, offset = "more than one JSON value (not JSON lines either)", int(dec.InputOffset())
	default:
		msg = err.Error()
	}
	line, col := lineCol(data, offset)
	if where != "" {
		return core.Errorf(core.EINVALID, "%s, column %d: %s", where, col, msg)
	}
	return core.Errorf(core.EINVALID, "line %d, column %d (byte %d): %s", line, col, offset, msg)
}

// lineCol turns a byte offset into 1-based line and column numbers.
func lineCol(data []byte, offset int) (line, col int) {
	if offset > len(data) {
		offset = len(data)
	}
	before := data[:offset]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = offset - bytes.LastIndexByte(before, '\n')
	return line, col
}

// isRecord tells a CloudTrail record (or LookupEvents event, or wrapped record) from other JSON
// that dataset folders carry, by the fields every record has.
func isRecord(v gjson.Result) bool {
	if !v.IsObject() {
		return false
	}
	for _, k := range []string{"eventVersion", "eventTime", `\@timestamp`, "eventID", "EventId", "CloudTrailEvent"} {
		if v.Get(k).Exists() {
			return true
		}
	}
	if log := v.Get("log"); log.IsObject() {
		return log.Get("eventVersion").Exists() || log.Get("eventTime").Exists() || log.Get("eventID").Exists()
	}
	return false
}

func anyRecord(items []item) bool {
	for _, it := range items {
		if isRecord(it.val) {
			return true
		}
	}
	return false
}

// toRawEvent turns one candidate into a RawEvent. Its errors name the field; the caller adds where.
func toRawEvent(v gjson.Result) (core.RawEvent, error) {
	if !v.IsObject() {
		return core.RawEvent{}, errors.New("not a JSON object")
	}
	if cte := v.Get("CloudTrailEvent"); cte.Exists() {
		return fromLookupEvent(v, cte)
	}
	rec := v
	if log := v.Get("log"); log.IsObject() && !v.Get("eventVersion").Exists() && !v.Get("eventTime").Exists() {
		rec = log
	}
	record, err := compact(rec.Raw)
	if err != nil {
		return core.RawEvent{}, err
	}
	t, err := recordTime(rec)
	if err != nil {
		return core.RawEvent{}, err
	}
	id, err := recordID(rec, record)
	if err != nil {
		return core.RawEvent{}, err
	}
	env := EnvelopeFromRecord(record, id, t)
	return core.RawEvent{
		EventID:   id,
		EventTime: t,
		Region:    rec.Get("awsRegion").String(),
		Category:  categoryOf(rec),
		Record:    record,
		Envelope:  MarshalEnvelope(env),
	}, nil
}

// fromLookupEvent reads an event in LookupEvents' shape: the envelope is authoritative for the
// fields it carries, the record fills in the rest.
func fromLookupEvent(v, cte gjson.Result) (core.RawEvent, error) {
	var raw string
	switch {
	case cte.Type == gjson.String:
		raw = cte.Str
	case cte.IsObject(): // some tools decode CloudTrailEvent before saving it
		raw = cte.Raw
	default:
		return core.RawEvent{}, errors.New("CloudTrailEvent: not a JSON string holding a record")
	}
	if !gjson.Valid(raw) || !gjson.Parse(raw).IsObject() {
		return core.RawEvent{}, errors.New("CloudTrailEvent: does not hold a JSON object")
	}
	rec := gjson.Parse(raw)
	record, err := compact(raw)
	if err != nil {
		return core.RawEvent{}, fmt.Errorf("CloudTrailEvent: %w", err)
	}
	var t time.Time
	if et := v.Get("EventTime"); et.Exists() && et.Type != gjson.Null {
		if t, err = timeOf(et); err != nil {
			return core.RawEvent{}, fmt.Errorf("EventTime: %w", err)
		}
	} else if t, err = recordTime(rec); err != nil {
		return core.RawEvent{}, fmt.Errorf("CloudTrailEvent.%w", err)
	}
	id := v.Get("EventId").String()
	if id == "" {
		if id, err = recordID(rec, record); err != nil {
			return core.RawEvent{}, fmt.Errorf("CloudTrailEvent.%w", err)
		}
	}
	env := EnvelopeFromRecord(record, id, t)
	str := func(key string, dst *string) {
		if f := v.Get(key); f.Exists() && f.Type != gjson.Null {
			*dst = f.String()
		}
	}
	str("EventName", &env.EventName)
	str("EventSource", &env.EventSource)
	str("Username", &env.Username)
	str("AccessKeyId", &env.AccessKeyID)
	str("ReadOnly", &env.ReadOnly)
	if rs := v.Get("Resources"); rs.IsArray() {
		env.Resources = []Resource{}
		rs.ForEach(func(_, r gjson.Result) bool {
			env.Resources = append(env.Resources, Resource{
				ResourceType: r.Get("ResourceType").String(),
				ResourceName: r.Get("ResourceName").String(),
			})
			return true
		})
	}
	return core.RawEvent{
		EventID:   id,
		EventTime: t,
		Region:    rec.Get("awsRegion").String(),
		Category:  categoryOf(rec),
		Record:    record,
		Envelope:  MarshalEnvelope(env),
	}, nil
}

func compact(raw string) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(raw)); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// recordTime is eventTime, or @timestamp for exports (OTRF) that moved it there.
func recordTime(rec gjson.Result) (time.Time, error) {
	if et := rec.Get("eventTime"); et.Exists() && et.Type != gjson.Null {
		t, err := timeOf(et)
		if err != nil {
			return time.Time{}, fmt.Errorf("eventTime: %w", err)
		}
		return t, nil
	}
	if ts := rec.Get(`\@timestamp`); ts.Exists() && ts.Type != gjson.Null {
		t, err := timeOf(ts)
		if err != nil {
			return time.Time{}, fmt.Errorf("@timestamp: %w", err)
		}
		return t, nil
	}
	return time.Time{}, errors.New("eventTime: missing (and no @timestamp)")
}

// recordID is eventID, or for records without one a hash of the record, so that loading the
// same file twice yields the same ids and duplicates still collapse.
func recordID(rec gjson.Result, record []byte) (string, error) {
	id := rec.Get("eventID")
	switch {
	case !id.Exists() || id.Type == gjson.Null:
		return HashID(record), nil
	case id.Type != gjson.String || id.Str == "":
		return "", fmt.Errorf("eventID: not a non-empty string: %s", id.Raw)
	}
	return id.Str, nil
}

// HashID derives a stable, UUID-shaped event id from a record's bytes.
func HashID(record []byte) string {
	sum := sha256.Sum256(record)
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func categoryOf(rec gjson.Result) string {
	if strings.EqualFold(rec.Get("eventCategory").String(), "Insight") {
		return core.CategoryInsight
	}
	return core.CategoryManagement
}

func timeOf(v gjson.Result) (time.Time, error) {
	switch v.Type {
	case gjson.Number:
		return epoch(v.Num)
	case gjson.String:
		return ParseTime(v.Str)
	}
	return time.Time{}, fmt.Errorf("not a time: %s", v.Raw)
}

// timeLayouts are the shapes event times come in: RFC 3339 (trail files), Python's str(datetime)
// with an offset (boto3 LookupEvents dumps) and the same without a zone, taken as UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

// ParseTime reads an event time: RFC 3339, "2022-02-08 09:23:37+11:00", a zone-less date-time
// (UTC) or epoch seconds as a string. The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return epoch(f)
	}
	return time.Time{}, fmt.Errorf("not a time: %q", s)
}

// epoch reads epoch seconds, as LookupEvents sends them; values too large to be seconds before
// the year 5000 are taken as milliseconds, which some exporters write.
func epoch(f float64) (time.Time, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return time.Time{}, fmt.Errorf("not a time: %v", f)
	}
	if f > 1e11 {
		f /= 1000
	}
	return time.UnixMilli(int64(math.Round(f * 1000))).UTC(), nil
}
