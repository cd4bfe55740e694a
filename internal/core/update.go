package core

import "strconv"

// secretRule says when an update may keep one stored secret instead of sending it again.
type secretRule struct {
	field  string
	secret func(*Integration) *Secret
	// keepIfOut reports whether leaving the secret out keeps the stored one: only while the
	// credential it belongs to (the access key, the role) is unchanged.
	keepIfOut func(upd, stored *Integration, members []member) bool
}

var secretRules = []secretRule{
	{fSecretAccessKey, func(in *Integration) *Secret { return &in.SecretAccessKey }, sameKey},
	{fSessionToken, func(in *Integration) *Secret { return &in.SessionToken }, func(upd, stored *Integration, ms []member) bool {
		// A new secret is a new key pair: an old session token does not go with it.
		return sameKey(upd, stored, ms) && (!present(ms, fSecretAccessKey) || isMarker(ms, fSecretAccessKey))
	}},
	{fExternalID, func(in *Integration) *Secret { return &in.ExternalID }, func(upd, stored *Integration, _ []member) bool {
		return upd.RoleARN != "" && upd.RoleARN == stored.RoleARN
	}},
}

func sameKey(upd, stored *Integration, _ []member) bool {
	return upd.AccessKeyID != "" && upd.AccessKeyID == stored.AccessKeyID
}

// destinationFields are the settings that decide where a secret goes and whom it authenticates
// as: a stored secret is only ever used with the values it was sent with.
var destinationFields = []struct {
	field string
	value func(*Integration) string
}{
	{fType, func(in *Integration) string { return in.Type }},
	{fAWSRegion, func(in *Integration) string { return in.AWSRegion }},
	{fRoleARN, func(in *Integration) string { return in.RoleARN }},
	{fExternalID, func(in *Integration) string { return in.ExternalID.Reveal() }},
	{fEndpoint, func(in *Integration) string { return in.Endpoint }},
	{fProxy, func(in *Integration) string { return in.Proxy }},
	{fVerifySSL, func(in *Integration) string { return strconv.FormatBool(in.VerifySSL) }},
}

// ParseIntegrationUpdate parses the settings document that replaces stored (PUT), keeping stored
// secrets the document does not send again: a secret given as the redaction marker "********",
// or left out while the credential it belongs to is unchanged (the same accessKeyId for
// secretAccessKey and sessionToken, the same roleArn for externalId).
//
// A kept secret follows its destination: a document that keeps one while changing where it is
// sent or what it is used for (type, region, roleArn, externalId, endpoint, proxy, verifySsl) is
// refused with an EINVALID error naming the changed field, so that a caller who can edit an
// integration but does not know its secrets cannot send them to a host of its own. Every update
// path (serve, the Lambda API) goes through here.
func ParseIntegrationUpdate(data []byte, stored *Integration) (*Integration, error) {
	if stored == nil {
		return ParseIntegration(data)
	}
	var kept []string
	in, err := parseIntegration(data, func(in *Integration, ms []member) error {
		for _, r := range secretRules {
			p, was := r.secret(in), *r.secret(stored)
			switch {
			case isMarker(ms, r.field) && !was.IsSet():
				return FieldError(r.field, "holds the redaction marker %s but no secret is stored to keep: send the value", Redacted)
			case isMarker(ms, r.field) && !r.keepIfOut(in, stored, ms):
				owner := fAccessKeyID
				if r.field == fExternalID {
					owner = fRoleARN
				}
				return FieldError(r.field, "holds the redaction marker %s, but the stored secret belongs to another %s: send the value that goes with the new one", Redacted, owner)
			case isMarker(ms, r.field), !present(ms, r.field) && was.IsSet() && r.keepIfOut(in, stored, ms):
				*p = was
				kept = append(kept, r.field)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(kept) == 0 {
		return in, nil
	}
	for _, d := range destinationFields {
		if d.value(in) == d.value(stored) {
			continue
		}
		field := d.field
		if field == fAWSRegion && in.Type == TypeLegacy {
			field = fAmazonRegion
		}
		return nil, FieldError(field, "changes where the stored %s is used: send the secret again to change where it is used", kept[0])
	}
	return in, nil
}

// present reports whether the document has the member key with a value other than null.
func present(ms []member, key string) bool {
	m, ok := findMember(ms, key)
	return ok && !isNull(m.raw)
}

// isMarker reports whether the member key holds the redaction marker.
func isMarker(ms []member, key string) bool {
	m, ok := findMember(ms, key)
	if !ok {
		return false
	}
	s, set, err := decodeString(m)
	return err == nil && set && s == Redacted
}
