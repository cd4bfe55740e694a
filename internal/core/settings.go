package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ValidateCorrelationQuery, when set, compiles a correlation query so that a bad one is refused
// when the settings are saved rather than when a run first evaluates it. The package that owns
// the query language (CEL) installs it from an init function; core cannot import it.
var ValidateCorrelationQuery func(string) error

// Limits of the settings, from the integration guide where it gives one and otherwise wide enough
// for any real deployment while catching unit mistakes (milliseconds typed as seconds).
const (
	maxNameLen    = 256
	maxIDLen      = 128
	maxPathLen    = 256
	maxPageSize   = 1000
	maxMaxPage    = 100
	maxTimeout    = 300   // seconds
	maxMinutes    = 1440  // one day, for every setting counted in minutes
	minInterval   = 5     // seconds between queries
	maxInterval   = 3600  // seconds between queries
	maxAdjustment = 86400 // seconds of event time adjustment, either way
	maxExternalID = 1224
	minExternalID = 2
	regionAlias   = "ap-south1" // the guide's spelling of ap-south-1
)

// Field names of the settings document, as the user writes them and as errors name them.
const (
	fType                     = "type"
	fID                       = "id"
	fName                     = "name"
	fAWSRegion                = "awsRegion"
	fAmazonRegion             = "amazonRegion"
	fAccessKeyID              = "accessKeyId"
	fSecretAccessKey          = "secretAccessKey"
	fSessionToken             = "sessionToken"
	fRoleARN                  = "roleArn"
	fExternalID               = "externalId"
	fEndpoint                 = "endpoint"
	fProxy                    = "proxy"
	fTimeout                  = "timeout"
	fVerifySSL                = "verifySsl"
	fPageSize                 = "pageSize"
	fMaxPage                  = "maxPage"
	fEventSensorUUIDs         = "eventSensorUuids"
	fAlarmSensorUUIDs         = "alarmSensorUuids"
	fFieldMap                 = "fieldMap"
	fQueryTime                = "queryTime"
	fDelayTime                = "delayTime"
	fQueryInterval            = "queryInterval"
	fCorrelationQueryEnabled  = "correlationQueryEnabled"
	fCorrelationQuery         = "correlationQuery"
	fCorrelationQueryInterval = "correlationQueryInterval"
	fDiscoverNetworkDevices   = "discoverNetworkDevices"
	fSaveSuspiciousEvents     = "saveSuspiciousEvents"
	fEventTimeAdjustment      = "eventTimeAdjustment"
	fLimit                    = "limit"
	fSettleTime               = "settleTime"
)

// settingSetter decodes one member of a settings document into the integration being built.
type settingSetter func(m member, in *Integration, userFieldMap *map[string][]string) error

// msiFields lists every field of the MSI form in the order the design gives them.
var msiFields = []string{
	fType, fID, fName, fAWSRegion, fAccessKeyID, fSecretAccessKey, fSessionToken, fRoleARN,
	fExternalID, fEndpoint, fProxy, fTimeout, fVerifySSL, fPageSize, fMaxPage, fEventSensorUUIDs,
	fAlarmSensorUUIDs, fFieldMap, fQueryTime, fDelayTime, fQueryInterval, fCorrelationQueryEnabled,
	fCorrelationQuery, fCorrelationQueryInterval, fDiscoverNetworkDevices, fSaveSuspiciousEvents,
	fEventTimeAdjustment, fLimit, fSettleTime,
}

// legacyFields is the whole Legacy form: the guide's dialog, plus type and id which identify the
// document rather than configure it.
var legacyFields = []string{
	fType, fID, fName, fAccessKeyID, fSecretAccessKey, fAmazonRegion, fQueryTime, fDelayTime,
	fDiscoverNetworkDevices, fQueryInterval, fEventTimeAdjustment, fSaveSuspiciousEvents,
}

// settingSetters maps each field of either form to its decoder. amazonRegion and awsRegion fill
// the same setting; which one a document may use depends on its type.
var settingSetters = map[string]settingSetter{
	fType:             func(m member, in *Integration, _ *map[string][]string) error { return nil }, // read first
	fID:               stringSetter(func(in *Integration) *string { return &in.ID }),
	fName:             stringSetter(func(in *Integration) *string { return &in.Name }),
	fAWSRegion:        stringSetter(func(in *Integration) *string { return &in.AWSRegion }),
	fAmazonRegion:     stringSetter(func(in *Integration) *string { return &in.AWSRegion }),
	fAccessKeyID:      stringSetter(func(in *Integration) *string { return &in.AccessKeyID }),
	fSecretAccessKey:  secretSetter(func(in *Integration) *Secret { return &in.SecretAccessKey }),
	fSessionToken:     secretSetter(func(in *Integration) *Secret { return &in.SessionToken }),
	fRoleARN:          stringSetter(func(in *Integration) *string { return &in.RoleARN }),
	fExternalID:       secretSetter(func(in *Integration) *Secret { return &in.ExternalID }),
	fEndpoint:         stringSetter(func(in *Integration) *string { return &in.Endpoint }),
	fProxy:            stringSetter(func(in *Integration) *string { return &in.Proxy }),
	fTimeout:          intSetter(func(in *Integration) *int { return &in.Timeout }),
	fVerifySSL:        boolSetter(func(in *Integration) *bool { return &in.VerifySSL }),
	fPageSize:         intSetter(func(in *Integration) *int { return &in.PageSize }),
	fMaxPage:          intSetter(func(in *Integration) *int { return &in.MaxPage }),
	fEventSensorUUIDs: listSetter(func(in *Integration) *[]string { return &in.EventSensorUUIDs }),
	fAlarmSensorUUIDs: listSetter(func(in *Integration) *[]string { return &in.AlarmSensorUUIDs }),
	fFieldMap: func(m member, _ *Integration, fm *map[string][]string) error {
		v, err := decodeFieldMap(m)
		if err != nil {
			return err
		}
		*fm = v
		return nil
	},
	fQueryTime:                intSetter(func(in *Integration) *int { return &in.QueryTime }),
	fDelayTime:                intSetter(func(in *Integration) *int { return &in.DelayTime }),
	fQueryInterval:            intSetter(func(in *Integration) *int { return &in.QueryInterval }),
	fCorrelationQueryEnabled:  boolSetter(func(in *Integration) *bool { return &in.CorrelationQueryEnabled }),
	fCorrelationQuery:         stringSetter(func(in *Integration) *string { return &in.CorrelationQuery }),
	fCorrelationQueryInterval: intSetter(func(in *Integration) *int { return &in.CorrelationQueryInterval }),
	fDiscoverNetworkDevices:   boolSetter(func(in *Integration) *bool { return &in.DiscoverNetworkDevices }),
	fSaveSuspiciousEvents:     boolSetter(func(in *Integration) *bool { return &in.SaveSuspiciousEvents }),
	fEventTimeAdjustment:      intSetter(func(in *Integration) *int { return &in.EventTimeAdjustment }),
	fLimit:                    intSetter(func(in *Integration) *int { return &in.Limit }),
	fSettleTime:               intSetter(func(in *Integration) *int { return &in.SettleTime }),
}

func stringSetter(p func(*Integration) *string) settingSetter {
	return func(m member, in *Integration, _ *map[string][]string) error {
		s, ok, err := decodeString(m)
		if err == nil && ok {
			*p(in) = s
		}
		return err
	}
}

func secretSetter(p func(*Integration) *Secret) settingSetter {
	return func(m member, in *Integration, _ *map[string][]string) error {
		s, ok, err := decodeString(m)
		if err == nil && ok {
			*p(in) = Secret(s)
		}
		return err
	}
}

func intSetter(p func(*Integration) *int) settingSetter {
	return func(m member, in *Integration, _ *map[string][]string) error {
		n, ok, err := decodeInt(m)
		if err == nil && ok {
			*p(in) = n
		}
		return err
	}
}

func boolSetter(p func(*Integration) *bool) settingSetter {
	return func(m member, in *Integration, _ *map[string][]string) error {
		b, ok, err := decodeBool(m)
		if err == nil && ok {
			*p(in) = b
		}
		return err
	}
}

func listSetter(p func(*Integration) *[]string) settingSetter {
	return func(m member, in *Integration, _ *map[string][]string) error {
		l, ok, err := decodeStringList(m)
		if err == nil && ok {
			*p(in) = l
		}
		return err
	}
}

// defaultIntegration is an integration with every default of the guide and the design applied;
// a document's members overwrite what they name.
func defaultIntegration(typ string) *Integration {
	return &Integration{
		Type:                     typ,
		Timeout:                  DefaultTimeout,
		VerifySSL:                true,
		PageSize:                 DefaultPageSize,
		MaxPage:                  DefaultMaxPage,
		QueryTime:                DefaultQueryTime,
		DelayTime:                DefaultDelayTime,
		QueryInterval:            DefaultQueryInterval,
		CorrelationQueryInterval: DefaultCorrelationQueryInterval,
		DiscoverNetworkDevices:   true,
		EventTimeAdjustment:      0,
		Limit:                    DefaultLimit,
		SettleTime:               DefaultSettleTime,
	}
}

// ParseIntegration decodes integration settings in the MSI form ("type": "msi", the default) or
// the Legacy form ("type": "legacy"), applies the defaults, validates every setting and returns
// the resolved integration. Any problem is an EINVALID *Error naming the field (dotted for nested
// fields, e.g. fieldMap.hosts[1]); nothing is returned alongside an error. Error messages never
// contain the value of a credential.
func ParseIntegration(data []byte) (*Integration, error) { return parseIntegration(data, nil) }

// parseIntegration is ParseIntegration with a hook that sees the decoded members before the
// checks run: the update path (ParseIntegrationUpdate) puts kept secrets back there.
func parseIntegration(data []byte, keep func(in *Integration, members []member) error) (*Integration, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	members, err := scanDocument(data, "", "the integration settings")
	if err != nil {
		return nil, err
	}
	if err := checkDuplicates(members); err != nil {
		return nil, err
	}

	typ := TypeMSI
	if m, ok := findMember(members, fType); ok {
		s, set, err := decodeString(m)
		if err != nil {
			return nil, err
		}
		if set && s != "" {
			typ = s
		}
		if typ != TypeMSI && typ != TypeLegacy {
			return nil, FieldError(fType, "must be %q or %q (leave it out for %q)", TypeMSI, TypeLegacy, TypeMSI)
		}
	}
	allowed, regionField := msiFields, fAWSRegion
	if typ == TypeLegacy {
		allowed, regionField = legacyFields, fAmazonRegion
	}

	in := defaultIntegration(typ)
	var userFieldMap map[string][]string
	for _, m := range members {
		if !slices.Contains(allowed, m.key) {
			return nil, atLine(unknownSettingError(m.key, typ), m)
		}
		if err := settingSetters[m.key](m, in, &userFieldMap); err != nil {
			return nil, err
		}
	}
	in.FieldMap = userFieldMap
	if keep != nil {
		if err := keep(in, members); err != nil {
			return nil, err
		}
	}

	errs := checkIntegration(in, regionField)
	if len(errs) > 0 {
		return nil, mostUseful(errs, members)
	}
	in.FieldMap = ResolveFieldMap(userFieldMap)
	return in, nil
}

// ValidateIntegration checks an integration built in Go (the API's update path) with the checks
// ParseIntegration makes, and resolves it in place the way ParseIntegration would have: an empty
// Type becomes "msi", the guide's region spelling ap-south1 becomes ap-south-1, sensor UUIDs take
// their canonical spelling and the field map gains the default entries of the targets it does not
// name. Errors name the fields as the settings document spells them.
func ValidateIntegration(in *Integration) error {
	if in == nil {
		return Errorf(EINVALID, "no integration settings")
	}
	if in.Type == "" {
		in.Type = TypeMSI
	}
	regionField := fAWSRegion
	if in.Type == TypeLegacy {
		regionField = fAmazonRegion
	}
	if errs := checkIntegration(in, regionField); len(errs) > 0 {
		return errs[0]
	}
	in.FieldMap = ResolveFieldMap(in.FieldMap)
	return nil
}

// LoadIntegrationFile reads and parses an integration settings file; its errors name the file.
func LoadIntegrationFile(path string) (*Integration, error) {
	data, err := readInputFile(path)
	if err != nil {
		return nil, err
	}
	in, err := ParseIntegration(data)
	if err != nil {
		return nil, InFile(path, err)
	}
	return in, nil
}

// ResolveFieldMap returns the default field map with user's entries replacing the targets they
// name. The result shares no slice with either input, so changing it never changes the default.
func ResolveFieldMap(user map[string][]string) map[string][]string {
	out := make(map[string][]string, len(DefaultFieldMap)+len(user))
	for k, v := range DefaultFieldMap {
		out[k] = slices.Clone(v)
	}
	for k, v := range user {
		out[k] = slices.Clone(v)
	}
	return out
}

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
			truncate(target, 64), strings.Join(FieldMapTargets, ", "))}
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
	k := truncate(key, 64)
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
			return FieldError(truncate(m.field, 128), "is given twice (again at line %d, column %d); keep one", line, col)
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

// truncate shortens user-supplied names quoted in messages, so that a pasted blob cannot flood
// a log line.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "..."
}
