package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trailproof/trailproof/internal/redact"
)

// ---- JSON reading shared by the settings and the action ----

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// member is one name/value pair of a JSON object, with where its value starts in the document
// (for line:column in errors) and its dotted field path.
type member struct {
	key   string
	field string // dotted path of the member, e.g. actor.hosts
	raw   json.RawMessage
	doc   []byte // the whole document, to turn offsets into lines and columns
	off   int    // byte offset of raw in doc
}

// scanDocument checks that data is one well-formed JSON object and returns its members in
// document order. what names the document in the messages ("the action").
func scanDocument(data []byte, prefix, what string) ([]member, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Errorf(EINVALID, "empty document: expected a JSON object with %s", what)
	}
	var probe json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, syntaxError(data, err)
	}
	return scanObject(data, member{field: prefix, raw: data, doc: data, off: 0}, what)
}

// scanObject splits the JSON object held by m (already known to be well formed) into members.
func scanObject(doc []byte, m member, what string) ([]member, error) {
	start := skipSpace(m.raw)
	if start >= len(m.raw) || m.raw[start] != '{' {
		if m.field == "" {
			line, col := position(doc, m.off+start)
			return nil, Errorf(EINVALID, "expected a JSON object {...} with %s, found %s at line %d, column %d", what, jsonKind(m.raw[start:]), line, col)
		}
		return nil, typeError(m, "an object {...}")
	}
	dec := json.NewDecoder(bytes.NewReader(m.raw))
	if _, err := dec.Token(); err != nil {
		return nil, syntaxError(doc, err)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(doc, err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(doc, err)
		}
		field := key
		if m.field != "" {
			field = m.field + "." + key
		}
		out = append(out, member{
			key: key, field: field, raw: raw, doc: doc,
			off: m.off + int(dec.InputOffset()) - len(raw),
		})
	}
	return out, nil
}

// checkDuplicates refuses a member given twice: encoding/json would silently keep the last,
// which hides a mistake (two secrets, two regions) the user should see.
func checkDuplicates(members []member) error {
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		if seen[m.key] {
			line, col := position(m.doc, m.off)
			return FieldError(redact.Truncate(m.field, 128), "is given twice (again at line %d, column %d); keep one", line, col)
		}
		seen[m.key] = true
	}
	return nil
}

func findMember(members []member, key string) (member, bool) {
	for _, m := range members {
		if m.key == key {
			return m, true
		}
	}
	return member{}, false
}

// syntaxError turns a decoding failure into an EINVALID error with the line and column of the
// offending character.
func syntaxError(doc []byte, err error) *Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := int(se.Offset)
		if off > 0 && !strings.Contains(se.Error(), "unexpected end") {
			off-- // Offset counts the bytes read, the bad one included
		}
		line, col := position(doc, off)
		e := Errorf(EINVALID, "malformed JSON at line %d, column %d: %s", line, col, se.Error())
		e.Err = err
		return e
	}
	e := Errorf(EINVALID, "malformed JSON: %v", err)
	e.Err = err
	return e
}

// position converts a byte offset into a 1-based line and a 1-based column counted in characters.
func position(doc []byte, off int) (line, col int) {
	off = min(max(off, 0), len(doc))
	before := doc[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCount(before[lineStart:])
}

func skipSpace(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonKind names the kind of a JSON value by its first character, for type errors.
func jsonKind(raw []byte) string {
	raw = raw[skipSpace(raw):]
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// typeError says what a member should have been, what it is and where. It never quotes the
// value, which may be a credential.
func typeError(m member, want string) *Error {
	line, col := position(m.doc, m.off)
	return FieldError(m.field, "must be %s, not %s (line %d, column %d)", want, jsonKind(m.raw), line, col)
}

// decodeString reads a string member; null reads as absent (ok false).
func decodeString(m member) (s string, ok bool, err error) {
	if isNull(m.raw) {
		return "", false, nil
	}
	if err := json.Unmarshal(m.raw, &s); err != nil {
		return "", false, typeError(m, "a string")
	}
	return s, true, nil
}

func decodeBool(m member) (b bool, ok bool, err error) {
	if isNull(m.raw) {
		return false, false, nil
	}
	if err := json.Unmarshal(m.raw, &b); err != nil {
		return false, false, typeError(m, "true or false")
	}
	return b, true, nil
}

// decodeInt reads a whole number. A value past the range of int is clamped so that the range
// check reports it with the allowed span rather than as a type problem.
func decodeInt(m member) (n int, ok bool, err error) {
	if isNull(m.raw) {
		return 0, false, nil
	}
	var num json.Number
	if jsonKind(m.raw) != "a number" || json.Unmarshal(m.raw, &num) != nil {
		return 0, false, typeError(m, "a whole number")
	}
	if v, err := strconv.ParseInt(num.String(), 10, 64); err == nil {
		return int(v), true, nil
	}
	f, err := strconv.ParseFloat(num.String(), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false, typeError(m, "a whole number")
	}
	switch {
	case math.IsInf(f, 1) || f >= math.MaxInt64:
		return math.MaxInt, true, nil
	case math.IsInf(f, -1) || f <= math.MinInt64:
		return math.MinInt, true, nil
	case f != math.Trunc(f):
		line, col := position(m.doc, m.off)
		return 0, false, FieldError(m.field, "must be a whole number, not a fraction (line %d, column %d)", line, col)
	}
	return int(f), true, nil
}

// decodeStringList reads a list of strings; each element's errors name its index.
func decodeStringList(m member) (l []string, ok bool, err error) {
	if isNull(m.raw) {
		return nil, false, nil
	}
	var elems []json.RawMessage
	if jsonKind(m.raw) != "a list" || json.Unmarshal(m.raw, &elems) != nil {
		return nil, false, typeError(m, "a list of strings")
	}
	l = make([]string, 0, len(elems))
	base := m.off + bytes.IndexByte(m.raw, '[') + 1
	for i, e := range elems {
		// Find each element where it sits in the document, for its line and column.
		off := base + bytes.Index(m.doc[base:m.off+len(m.raw)], e)
		base = off + len(e)
		em := member{field: fmt.Sprintf("%s[%d]", m.field, i), raw: e, doc: m.doc, off: off}
		s, set, err := decodeString(em)
		if err != nil {
			return nil, false, err
		}
		if !set {
			return nil, false, typeError(em, "a string")
		}
		l = append(l, s)
	}
	if len(l) == 0 {
		l = nil // an empty list and an absent one mean the same; keep one spelling of it
	}
	return l, true, nil
}

// decodeFieldMap reads the fieldMap object: target -> list of paths.
func decodeFieldMap(m member) (map[string][]string, error) {
	if isNull(m.raw) {
		return nil, nil
	}
	entries, err := scanObject(m.doc, m, "")
	if err != nil {
		return nil, err
	}
	if err := checkDuplicates(entries); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(entries))
	for _, e := range entries {
		l, _, err := decodeStringList(e)
		if err != nil {
			return nil, err
		}
		out[e.key] = l
	}
	return out, nil
}

// readInputFile reads a settings or action file; a file that cannot be read is bad input named
// by its path, like a file that does not parse.
func readInputFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		reason := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			reason = pe.Err.Error()
		}
		return nil, &Error{Code: EINVALID, File: path, Message: "cannot read the file: " + reason, Err: err}
	}
	return data, nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}
