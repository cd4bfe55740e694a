package core

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// One-pass field extraction.
//
// The field map names a few dozen paths per record (DefaultFieldMap and the user's own). Asking
// gjson for each path scans the record from its start each time; instead the paths are compiled
// into a tree of their segments, and one walk over the record visits its members once, going down
// only into those a path continues through (userIdentity, requestParameters, tlsDetails...).
// A path's value is what gjson.Get would return for it: the first member of that name, an array
// element for a numeric segment, the array itself for a path ending at one.
//
// Correlation extracts only the targets it needs to decide (matchTargets); normalizing an event it
// keeps extracts every target.

// pathNode is one segment of the compiled paths: the paths ending here and the segments after it.
type pathNode struct {
	index int   // among the extractor's nodes
	ids   []int // the paths (value slots) that end here
	kids  map[string]*pathNode
}

// extractor is a compiled set of field-map targets.
type extractor struct {
	paths            map[string][]int // each target's paths, as value slots
	record, envelope pathNode
	slots, nodes     int
}

// newExtractor compiles the paths of targets from the integration's field map (DefaultFieldMap
// for targets it leaves out). A path whose first segment starts with a capital letter addresses
// the LookupEvents envelope (EventName, Username, Resources.0.ResourceName), as every CloudTrail
// record field starts in lower case.
func newExtractor(in *Integration, targets []string) *extractor {
	x := &extractor{paths: map[string][]int{}, nodes: 2}
	x.record.index, x.envelope.index = 0, 1
	for _, t := range targets {
		src, ok := in.FieldMap[t]
		if !ok {
			src = DefaultFieldMap[t]
		}
		for _, p := range src {
			root := &x.record
			if p != "" && p[0] >= 'A' && p[0] <= 'Z' {
				root = &x.envelope
			}
			x.add(root, p, x.slots)
			x.paths[t] = append(x.paths[t], x.slots)
			x.slots++
		}
	}
	return x
}

func (x *extractor) add(nd *pathNode, path string, id int) {
	for _, seg := range strings.Split(path, ".") {
		if nd.kids == nil {
			nd.kids = map[string]*pathNode{}
		}
		next := nd.kids[seg]
		if next == nil {
			next = &pathNode{index: x.nodes}
			x.nodes++
			nd.kids[seg] = next
		}
		nd = next
	}
	nd.ids = append(nd.ids, id)
}

// fields are the values of one raw event's paths, extracted in one pass each over its record and
// its envelope. The values refer to the event's bytes (no copy): they are read while the event
// is examined, and normalize copies what it keeps.
type fields struct {
	x     *extractor
	ev    *RawEvent
	vals  []gjson.Result // by slot
	taken []bool         // by node: the first member of a name wins
}

// extract walks the event's record and envelope once, into f (reused from event to event).
func (x *extractor) extract(ev *RawEvent, f *fields) *fields {
	if f == nil {
		f = &fields{}
	}
	f.x, f.ev = x, ev
	f.vals = resize(f.vals, x.slots)
	f.taken = resize(f.taken, x.nodes)
	if len(x.record.kids) > 0 && len(ev.Record) > 0 {
		f.walk(parse(ev.Record), &x.record)
	}
	if len(x.envelope.kids) > 0 && len(ev.Envelope) > 0 {
		f.walk(parse(ev.Envelope), &x.envelope)
	}
	return f
}

// resize returns s with n zero elements, reusing its array.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// parse reads JSON bytes without copying them to a string: the bytes of a raw event never change
// once read.
func parse(b []byte) gjson.Result { return gjson.Parse(unsafe.String(unsafe.SliceData(b), len(b))) }

// walk visits the members of an object or array whose names a path continues through.
func (f *fields) walk(v gjson.Result, nd *pathNode) {
	if !v.IsObject() && !v.IsArray() {
		return
	}
	arr := v.IsArray()
	i, left := 0, len(nd.kids)
	v.ForEach(func(k, child gjson.Result) bool {
		name := k.Str
		if arr {
			name = strconv.Itoa(i)
			i++
		}
		next := nd.kids[name]
		if next == nil || f.taken[next.index] {
			return true
		}
		f.taken[next.index] = true
		for _, id := range next.ids {
			f.vals[id] = child
		}
		if len(next.kids) > 0 {
			f.walk(child, next)
		}
		left--
		return left > 0 // every name a path goes through is found: the rest is of no use
	})
}

// first returns the first non-empty value of a target's paths.
func (f *fields) first(target string) string {
	for _, id := range f.x.paths[target] {
		if r := f.vals[id]; r.Exists() && r.Type != gjson.Null {
			if s := r.String(); s != "" {
				return s
			}
		}
	}
	return ""
}

// all returns every distinct non-empty value of a target's paths, in path order (an array's
// elements each).
func (f *fields) all(target string) []string {
	var out []string
	for _, id := range f.x.paths[target] {
		r := f.vals[id]
		if !r.Exists() || r.Type == gjson.Null {
			continue
		}
		vals := []gjson.Result{r}
		if r.IsArray() {
			vals = r.Array()
		}
		for _, v := range vals {
			s := v.String()
			if s == "" || contains(out, s) {
				continue
			}
			out = append(out, s)
		}
	}
	return out
}
