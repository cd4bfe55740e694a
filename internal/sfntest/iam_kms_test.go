package sfntest

import (
	"slices"
	"strings"
	"testing"
)

// TestIAMSealKmsKey: the sealer is chosen once for the deployment by the SealKmsKeyArn parameter.
// Set, the functions that open or seal integration secrets (those that read the seal key secret
// when it is empty, TestIAMAllowsEveryCall) may use that key and no other, only for trailproof's
// encryption context, and no longer read the secret; only the API, which stores integrations,
// may encrypt. Empty, no function may use KMS (TestIAMAllowsEveryCall holds every grant to a call).
func TestIAMSealKmsKey(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	const key = "arn:aws:kms:" + Region + ":" + Account + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
	aes := functionGrants(t, root, "iamkms", "")
	withKMS := functionGrants(t, root, "iamkms", key)
	has := func(gs []grant, prefix string) bool {
		return slices.ContainsFunc(gs, func(g grant) bool { return strings.HasPrefix(g.action, prefix) })
	}
	for _, fn := range iamFunctions {
		if has(aes[fn], "kms:") {
			t.Errorf("%s may use KMS although SealKmsKeyArn is empty", fn)
		}
		opens := has(aes[fn], "secretsmanager:GetSecretValue")
		if has(withKMS[fn], "secretsmanager:") {
			t.Errorf("%s may still read the seal key secret with SealKmsKeyArn set", fn)
		}
		var actions []string
		for _, g := range withKMS[fn] {
			if !strings.HasPrefix(g.action, "kms:") {
				continue
			}
			actions = append(actions, g.action)
			if !slices.Equal(g.resources, []string{key}) {
				t.Errorf("%s: %s on %v, want only the key %s", fn, g.action, g.resources, key)
			}
			ec, _ := g.condition["StringEquals"].(map[string]any)
			if ec["kms:EncryptionContext:app"] != "trailproof" {
				t.Errorf("%s: %s has condition %v, want the encryption context app=trailproof (kmsseal.App)", fn, g.action, g.condition)
			}
		}
		slices.Sort(actions)
		var want []string
		switch {
		case fn == "ApiFunction":
			want = []string{"kms:Decrypt", "kms:Encrypt"}
		case opens:
			want = []string{"kms:Decrypt"}
		}
		if !slices.Equal(actions, want) {
			t.Errorf("%s may %v with SealKmsKeyArn set, want %v (it reads the seal key secret without: %v)", fn, actions, want, opens)
		}
	}
}
