package core

import (
	"bytes"
	"slices"
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
