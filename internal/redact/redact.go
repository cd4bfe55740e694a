// Package redact shortens and masks text that is quoted back to users or written to logs, so that
// a pasted blob cannot flood a message and an access key id is never logged whole. It is a leaf:
// every package may use it. Secrets of an integration are scrubbed by core.(*Integration).Scrubber,
// which knows which fields are secret.
package redact

// Truncate shortens s to at most n runes, marking the cut with "...". It never splits a UTF-8
// sequence, so the result stays valid text for JSON and logs.
func Truncate(s string, n int) string {
	i := 0
	for off := range s {
		if i == n {
			return s[:off] + "..."
		}
		i++
	}
	return s
}

// MaskKey keeps enough of an access key id (its first and last four characters) to tell keys
// apart in logs without logging the id.
func MaskKey(id string) string {
	if len(id) <= 8 {
		return id
	}
	return id[:4] + "..." + id[len(id)-4:]
}
