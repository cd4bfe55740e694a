package core

import (
	"slices"
	"strconv"
	"strings"

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

// pathNode is one segment of the compiled paths: the paths ending here and the segments after it.
type pathNode struct {
	ids  []int // the paths (indexes into Normalizer.slots) that end here
	kids map[string]*pathNode
}

func (nd *pathNode) add(path string, id int) {
	for _, seg := range strings.Split(path, ".") {
		if nd.kids == nil {
			nd.kids = map[string]*pathNode{}
		}
		next := nd.kids[seg]
		if next == nil {
			next = &pathNode{}
			nd.kids[seg] = next
		}
		nd = next
	}
	nd.ids = append(nd.ids, id)
}

// fields are the values of one raw event's field-map paths, extracted in one pass each over its
// record and its envelope.
type fields struct {
	n    *Normalizer
	ev   *RawEvent
	vals []gjson.Result // by slot
}

// extract walks the event's record and envelope once.
func (n *Normalizer) extract(ev *RawEvent) *fields {
	f := &fields{n: n, ev: ev, vals: make([]gjson.Result, n.slots)}
	if len(n.record.kids) > 0 && len(ev.Record) > 0 {
		f.walk(gjson.ParseBytes(ev.Record), &n.record)
	}
	if len(n.envelope.kids) > 0 && len(ev.Envelope) > 0 {
		f.walk(gjson.ParseBytes(ev.Envelope), &n.envelope)
	}
	return f
}

// walk visits the members of an object or array whose names a path continues through. The first
// member of a name wins, as in gjson.Get.
func (f *fields) walk(v gjson.Result, nd *pathNode) {
	if !v.IsObject() && !v.IsArray() {
		return
	}
	arr := v.IsArray()
	i := 0
	var taken []*pathNode
	v.ForEach(func(k, child gjson.Result) bool {
		name := k.Str
		if arr {
			name = strconv.Itoa(i)
			i++
		}
		next := nd.kids[name]
		if next == nil || slices.Contains(taken, next) {
			return true
		}
		taken = append(taken, next)
		for _, id := range next.ids {
			f.vals[id] = child
		}
		if len(next.kids) > 0 {
			f.walk(child, next)
		}
		return true
	})
}

// first returns the first non-empty value of a target's paths.
func (f *fields) first(target string) string {
	for _, id := range f.n.paths[target] {
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
	for _, id := range f.n.paths[target] {
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
