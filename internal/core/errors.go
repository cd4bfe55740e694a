package core

import (
	"errors"
	"fmt"
)

// Error codes carried by *Error. The API maps each to an HTTP status, the CLI to an exit code.
const (
	EINVALID       = "invalid"      // bad input: settings, action, corpus, request
	ENOTFOUND      = "not_found"    // no such integration or run
	ECONFLICT      = "conflict"     // already exists, or changed concurrently
	EUNAUTHORIZED  = "unauthorized" // missing or wrong credentials
	ETOOLARGE      = "too_large"    // body or item over a size limit
	EUNSUPPORTED   = "unsupported_media_type"
	EUNPROCESSABLE = "unprocessable" // well-formed but cannot be acted on (e.g. run already ended)
	EINTERNAL      = "internal"

	// The codes below say why a step could not read or write what it needed; the workflow maps
	// each to the error name the state machine's Retry and Catch match (workflow.ErrorName).
	ETHROTTLED   = "throttled"   // a service kept throttling after the caller's own backoff: retry later
	ETRANSIENT   = "transient"   // a failure a retry may fix: a 5xx, a network fault, a concurrent update
	EDENIED      = "denied"      // credentials refused, expired or without permission: settings or IAM must change
	EREJECTED    = "rejected"    // a service rejected the request itself: the same request fails the same way
	EUNREACHABLE = "unreachable" // the network path cannot work until a setting changes (a name that does not resolve)
)

// coder is an error from outside core that states its code (a source's typed error, which keeps
// its own fields for the connectivity test), so that ErrorCode needs no knowledge of its type.
type coder interface{ ErrorCode() string }

// Error is an application error: a code a machine can act on, a message a person can, and where
// known the file and field it concerns.
type Error struct {
	Code    string
	Message string
	File    string // the file the input came from, when it came from one
	Field   string // dotted path of the offending field or parameter
	Err     error  // underlying cause, if any
}

// Error renders "file: field: message".
func (e *Error) Error() string {
	s := e.Message
	if e.Field != "" {
		s = e.Field + ": " + s
	}
	if e.File != "" {
		s = e.File + ": " + s
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID error about one field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first error in err's chain that has one (an *Error, or an
// error with an ErrorCode method), EINTERNAL for any other error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	for x := err; x != nil; x = errors.Unwrap(x) {
		switch v := x.(type) {
		case *Error:
			return v.Code
		case coder:
			return v.ErrorCode()
		case interface{ Unwrap() []error }:
			// errors.Join and multi-%w: the first that has a code, in the order errors.As looks.
			for _, y := range v.Unwrap() {
				if code := ErrorCode(y); code != EINTERNAL {
					return code
				}
			}
			return EINTERNAL
		}
	}
	return EINTERNAL
}

// Temporary reports whether err's code says a later attempt may pass (throttled or transient).
func Temporary(err error) bool {
	code := ErrorCode(err)
	return code == ETHROTTLED || code == ETRANSIENT
}

// ErrorMessage returns the human message of err: an *Error's own text, else a generic one so that
// internal details never reach a caller.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.File != "" {
			return e.File + ": " + e.Message
		}
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the field of the first *Error in err's chain.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// InFile returns err with File set when it is an *Error without one; other errors are wrapped.
func InFile(file string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		c := *e
		if c.File == "" {
			c.File = file
		}
		return &c
	}
	return fmt.Errorf("%s: %w", file, err)
}
