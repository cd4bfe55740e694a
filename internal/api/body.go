package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/redact"
)

// readJSON reads a JSON request body under the size limit. An empty body is returned as nil
// when optional; otherwise it is an EINVALID error naming what was expected.
func (h *Handler) readJSON(w http.ResponseWriter, r *http.Request, what string, optional bool) ([]byte, error) {
	limit := h.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, core.Errorf(core.ETOOLARGE, "the request body is %d bytes; the limit is %d bytes", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, core.Errorf(core.ETOOLARGE, "the request body is over the limit of %d bytes", limit)
		}
		return nil, core.Errorf(core.EINVALID, "cannot read the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil, nil
		}
		return nil, core.Errorf(core.EINVALID, "the request body is empty: send %s as JSON", what)
	}
	if err := checkJSONType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	return body, nil
}

// checkJSONType accepts application/json and any application/*+json, with any parameters.
func checkJSONType(ct string) error {
	if ct == "" {
		return core.Errorf(core.EUNSUPPORTED, "no Content-Type: send the body as application/json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !(mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return core.Errorf(core.EUNSUPPORTED, "Content-Type %q is not supported: send the body as application/json", redact.Truncate(ct, 100))
	}
	return nil
}

// idPattern is what an integration or run ID may look like (core's rule for integration IDs).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// pathID reads and checks the {id} path parameter.
func pathID(r *http.Request, what string) (string, error) {
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		return "", &core.Error{Code: core.EINVALID, Field: "id",
			Message: what + " ID must be 1 to 128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit"}
	}
	return id, nil
}

// member is one top-level member of a JSON object with where its key and value sit.
type member struct {
	key                  string
	keyStart             int // offset of the key's opening quote
	valueStart, valueEnd int // doc[valueStart:valueEnd] is the value
	raw                  json.RawMessage
}

// topMembers lists the members of the JSON object doc with their offsets; ok is false when doc
// is not one well-formed object (the core parsers then report why, with line and column).
func topMembers(doc []byte) (ms []member, closing int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, 0, false
	}
	for dec.More() {
		before := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, false
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, 0, false
		}
		end := int(dec.InputOffset())
		ks := before + bytes.IndexByte(doc[before:], '"')
		ms = append(ms, member{key: key, keyStart: ks, valueStart: end - len(raw), valueEnd: end, raw: raw})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, 0, false
	}
	closing = int(dec.InputOffset()) - 1
	if _, err := dec.Token(); err != io.EOF {
		return nil, 0, false // trailing data
	}
	return ms, closing, true
}

func findMember(ms []member, key string) (int, bool) {
	for i, m := range ms {
		if m.key == key {
			return i, true
		}
	}
	return -1, false
}

// removeMember returns doc without member i, still well-formed JSON.
func removeMember(doc []byte, ms []member, i int) []byte {
	var from, to int
	switch {
	case i > 0:
		from, to = ms[i-1].valueEnd, ms[i].valueEnd // ", "key": value
	case len(ms) > 1:
		from, to = ms[0].keyStart, ms[1].keyStart // "key": value, (up to the next key)
	default:
		from, to = ms[0].keyStart, ms[0].valueEnd
	}
	out := append([]byte{}, doc[:from]...)
	return append(out, doc[to:]...)
}

// stringValue decodes a member's value as a string; ok is false for anything else.
func stringValue(m member) (string, bool) {
	var s string
	if err := json.Unmarshal(m.raw, &s); err != nil {
		return "", false
	}
	return s, true
}
