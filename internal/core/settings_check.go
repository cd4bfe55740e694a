package core

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/trailproof/trailproof/internal/redact"
)

// checkIntegration makes every semantic check of a decoded integration and returns all the
// problems found, in the order of the design's field list. It normalizes spellings it accepts.
func checkIntegration(in *Integration, regionField string) []*Error {
	var errs []*Error
	add := func(e *Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	if in.Type != TypeMSI && in.Type != TypeLegacy {
		add(FieldError(fType, "must be %q or %q", TypeMSI, TypeLegacy))
	}
	if in.ID != "" && !idPattern.MatchString(in.ID) {
		add(FieldError(fID, "must be 1 to %d characters of letters, digits, '.', '_' and '-', starting with a letter or digit", maxIDLen))
	}
	add(checkName(fName, in.Name))
	add(checkRegion(regionField, &in.AWSRegion))
	for _, e := range checkCredentials(in) {
		add(e)
	}
	add(checkURL(fEndpoint, in.Endpoint, "the CloudTrail endpoint"))
	add(checkURL(fProxy, in.Proxy, "the proxy"))
	for _, r := range intRanges {
		add(r.check(in))
	}
	for _, e := range checkUUIDs(fEventSensorUUIDs, in.EventSensorUUIDs) {
		add(e)
	}
	for _, e := range checkUUIDs(fAlarmSensorUUIDs, in.AlarmSensorUUIDs) {
		add(e)
	}
	for _, e := range checkFieldMap(in.FieldMap) {
		add(e)
	}
	add(checkCorrelationQuery(in))
	return errs
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,` + strconv.Itoa(maxIDLen-1) + `}$`)

// checkName requires a printable name a person can tell apart from others.
func checkName(field, name string) *Error {
	switch {
	case strings.TrimSpace(name) == "":
		return FieldError(field, "is required: give the integration a name (up to %d characters)", maxNameLen)
	case utf8.RuneCountInString(name) > maxNameLen:
		return FieldError(field, "is too long: at most %d characters", maxNameLen)
	case hasControl(name):
		return FieldError(field, "must not contain control characters")
	}
	return nil
}

// checkRegion accepts the guide's regions, and its spelling ap-south1, which it rewrites.
func checkRegion(field string, region *string) *Error {
	r := *region
	if r == regionAlias {
		*region = "ap-south-1"
		return nil
	}
	if slices.Contains(Regions, r) {
		return nil
	}
	allowed := strings.Join(Regions, ", ")
	if r == "" {
		return FieldError(field, "is required: the AWS region of your CloudTrail, one of %s", allowed)
	}
	if !regionLike.MatchString(r) {
		// Not even shaped like a region: possibly a value pasted into the wrong field, such as a
		// key, so it is not quoted back.
		return FieldError(field, "is not a supported region; use one of %s", allowed)
	}
	return FieldError(field, "%q is not a supported region; use one of %s", r, allowed)
}

// regionLike is the shape of any AWS region name, supported or not.
var regionLike = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-?[0-9]{1,2}$`)

// accessKeyIDPattern is IAM's own constraint on access key IDs.
var accessKeyIDPattern = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)

// checkAccessKeyID never quotes the value: key IDs identify credentials.
func checkAccessKeyID(field, id string) *Error {
	if !accessKeyIDPattern.MatchString(id) {
		return FieldError(field, "must be an AWS access key ID: 16 to 128 characters of A-Z and 0-9 (e.g. AKIA...)")
	}
	return nil
}

var roleARNPattern = regexp.MustCompile(`^arn:aws[-a-z]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)

// externalIDPattern is STS's constraint on AssumeRole's ExternalId.
var externalIDPattern = regexp.MustCompile(`^[A-Za-z0-9+=,.@:/_-]+$`)

// checkCredentials allows keys, a role, keys used to assume a role, or nothing (the default
// credential chain), and refuses the halves of those.
func checkCredentials(in *Integration) []*Error {
	var errs []*Error
	hasKey, hasSecret := in.AccessKeyID != "", in.SecretAccessKey.IsSet()
	switch {
	case hasKey && !hasSecret:
		errs = append(errs, FieldError(fSecretAccessKey, "is required with accessKeyId: give both, or neither to use a role or the default credential chain"))
	case hasSecret && !hasKey:
		errs = append(errs, FieldError(fAccessKeyID, "is required with secretAccessKey: give both, or neither to use a role or the default credential chain"))
	}
	if hasKey {
		if e := checkAccessKeyID(fAccessKeyID, in.AccessKeyID); e != nil {
			errs = append(errs, e)
		}
	}
	if hasSecret && strings.TrimSpace(in.SecretAccessKey.Reveal()) != in.SecretAccessKey.Reveal() {
		errs = append(errs, FieldError(fSecretAccessKey, "must not start or end with white space (copy the key without it)"))
	}
	if in.SessionToken.IsSet() && !(hasKey && hasSecret) {
		errs = append(errs, FieldError(fSessionToken, "is only allowed with accessKeyId and secretAccessKey (it belongs to temporary keys)"))
	}
	if in.RoleARN != "" && !roleARNPattern.MatchString(in.RoleARN) {
		errs = append(errs, FieldError(fRoleARN, "must be an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>"))
	}
	if in.ExternalID.IsSet() {
		x := in.ExternalID.Reveal()
		switch {
		case in.RoleARN == "":
			errs = append(errs, FieldError(fExternalID, "is only allowed with roleArn (it is passed when assuming the role)"))
		case len(x) < minExternalID || len(x) > maxExternalID || !externalIDPattern.MatchString(x):
			errs = append(errs, FieldError(fExternalID, "must be %d to %d characters of letters, digits and +=,.@:/_-", minExternalID, maxExternalID))
		}
	}
	return errs
}

// checkURL requires an absolute http(s) URL. The value is never quoted back: a URL may carry a
// password. For the same reason a URL with credentials is refused: the setting is not a secret
// and would be shown and stored in plain text.
func checkURL(field, s, what string) *Error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return FieldError(field, "must be an absolute http:// or https:// URL of %s (e.g. https://host:port)", what)
	}
	if u.User != nil {
		return FieldError(field, "must not carry credentials (user:password@): this setting is not secret and would be shown in plain text")
	}
	return nil
}

// intRange is the allowed span of one numeric setting.
type intRange struct {
	field    string
	unit     string
	min, max int
	get      func(*Integration) int
}

var intRanges = []intRange{
	{fTimeout, "seconds", 1, maxTimeout, func(in *Integration) int { return in.Timeout }},
	{fPageSize, "events", 1, maxPageSize, func(in *Integration) int { return in.PageSize }},
	{fMaxPage, "pages", 1, maxMaxPage, func(in *Integration) int { return in.MaxPage }},
	{fQueryTime, "minutes", 1, maxMinutes, func(in *Integration) int { return in.QueryTime }},
	{fDelayTime, "minutes", 0, maxMinutes, func(in *Integration) int { return in.DelayTime }},
	{fQueryInterval, "seconds", minInterval, maxInterval, func(in *Integration) int { return in.QueryInterval }},
	{fCorrelationQueryInterval, "minutes", 1, maxMinutes, func(in *Integration) int { return in.CorrelationQueryInterval }},
	{fEventTimeAdjustment, "seconds", -maxAdjustment, maxAdjustment, func(in *Integration) int { return in.EventTimeAdjustment }},
	{fLimit, "events", 1, MaxLimit, func(in *Integration) int { return in.Limit }},
	{fSettleTime, "minutes", 0, maxMinutes, func(in *Integration) int { return in.SettleTime }},
}

func (r intRange) check(in *Integration) *Error {
	v := r.get(in)
	span := fmt.Sprintf("%d to %d %s", r.min, r.max, r.unit)
	switch {
	case v < 0 && r.min >= 0:
		return FieldError(r.field, "must not be negative (allowed: %s)", span)
	case v < r.min:
		return FieldError(r.field, "must be at least %d (allowed: %s)", r.min, span)
	case v > r.max:
		return FieldError(r.field, "must be at most %d (allowed: %s)", r.max, span)
	}
	return nil
}

// checkUUIDs requires UUIDs and rewrites each in its canonical lower-case form, the form sensor
// UUIDs derived from account and region take, so that comparisons need no folding.
func checkUUIDs(field string, list []string) []*Error {
	var errs []*Error
	for i, s := range list {
		u, err := uuid.Parse(s)
		if err != nil {
			errs = append(errs, FieldError(fmt.Sprintf("%s[%d]", field, i), "must be a UUID such as 123e4567-e89b-12d3-a456-426614174000"))
			continue
		}
		list[i] = u.String()
	}
	return errs
}

// pathPattern is one field-map path: segments of names or array indexes, joined by dots.
var pathPattern = regexp.MustCompile(`^[A-Za-z0-9_@$-]+(\.[A-Za-z0-9_@$-]+)*$`)

// checkFieldMap checks targets in the order of FieldMapTargets, then unknown ones in name order,
// so that the same map always reports the same problem first.
func checkFieldMap(m map[string][]string) []*Error {
	var errs []*Error
	targets := make([]string, 0, len(m))
	for k := range m {
		targets = append(targets, k)
	}
	slices.SortFunc(targets, func(a, b string) int {
		ia, ib := slices.Index(FieldMapTargets, a), slices.Index(FieldMapTargets, b)
		if ia < 0 {
			ia = len(FieldMapTargets)
		}
		if ib < 0 {
			ib = len(FieldMapTargets)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	for _, t := range targets {
		errs = append(errs, checkFieldMapEntry(t, m[t])...)
	}
	return errs
}

func checkFieldMapEntry(target string, paths []string) []*Error {
	field := fFieldMap + "." + target
	if !slices.Contains(FieldMapTargets, target) {
		return []*Error{FieldError(field, "unknown field-map target %q; the targets are %s",
			redact.Truncate(target, 64), strings.Join(FieldMapTargets, ", "))}
	}
	if len(paths) == 0 {
		return []*Error{FieldError(field, "must list at least one path (leave the target out to keep its default)")}
	}
	var errs []*Error
	for i, p := range paths {
		if len(p) > maxPathLen || !pathPattern.MatchString(p) {
			errs = append(errs, FieldError(fmt.Sprintf("%s[%d]", field, i),
				"bad path syntax: use dot-separated names or array indexes of letters, digits and _@$- (e.g. userIdentity.arn, resources.0.ARN), at most %d characters", maxPathLen))
		}
	}
	return errs
}

func checkCorrelationQuery(in *Integration) *Error {
	q := in.CorrelationQuery
	if strings.TrimSpace(q) == "" {
		if in.CorrelationQueryEnabled {
			return FieldError(fCorrelationQuery, "is required when correlationQueryEnabled is true (a CEL expression over record and normalized fields)")
		}
		return nil
	}
	if ValidateCorrelationQuery != nil {
		if err := ValidateCorrelationQuery(q); err != nil {
			e := FieldError(fCorrelationQuery, "is not a valid correlation query: %v", err)
			e.Err = err
			return e
		}
	}
	return nil
}

// mostUseful picks, among several problems, the one whose field comes first in the document;
// problems about fields the document leaves out (a missing name or region) come after those about
// fields it has, in the order they were found.
func mostUseful(errs []*Error, members []member) *Error {
	best, bestPos := errs[0], math.MaxInt
	for _, e := range errs {
		pos := math.MaxInt - 1
		top := topField(e.Field)
		for i, m := range members {
			if m.key == top {
				pos = i
				break
			}
		}
		if pos < bestPos {
			best, bestPos = e, pos
		}
	}
	return best
}

// topField is the document member a dotted field path starts with.
func topField(f string) string {
	if i := strings.IndexAny(f, ".["); i >= 0 {
		return f[:i]
	}
	return f
}

// unknownSettingError explains a member the document's form does not have: an MSI setting in a
// Legacy document, the other form's region field, a misspelling, or something unknown.
func unknownSettingError(key, typ string) *Error {
	k := redact.Truncate(key, 64)
	switch {
	case typ == TypeLegacy && key == fAWSRegion:
		return FieldError(k, "is not allowed in a legacy integration: the legacy form names the region amazonRegion")
	case typ == TypeLegacy && slices.Contains(msiFields, key):
		return FieldError(k, "is an MSI setting, not allowed in a legacy integration (set \"type\": \"msi\" to use it); the legacy fields are %s",
			strings.Join(legacyFields, ", "))
	case typ == TypeMSI && key == fAmazonRegion:
		return FieldError(k, "is not an MSI setting: the MSI form names the region awsRegion (amazonRegion belongs to \"type\": \"legacy\")")
	}
	fields := msiFields
	if typ == TypeLegacy {
		fields = legacyFields
	}
	if s := suggest(key, fields); s != "" {
		return FieldError(k, "unknown field; did you mean %q?", s)
	}
	form := "MSI"
	if typ == TypeLegacy {
		form = "legacy"
	}
	return FieldError(k, "unknown field; the %s fields are %s", form, strings.Join(fields, ", "))
}

// atLine adds to e where the member's value sits, so that a long document's problem can be
// found without searching for the field.
func atLine(e *Error, m member) *Error {
	line, col := position(m.doc, m.off)
	e.Message += fmt.Sprintf(" (line %d, column %d)", line, col)
	return e
}

// suggest finds the field a key probably meant: the same name but for case, '_' and '-'.
func suggest(key string, fields []string) string {
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	for _, f := range fields {
		if fold(f) == fold(key) {
			return f
		}
	}
	return ""
}
