package api

import (
	"bytes"
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
