package custody

import "strings"

// Redacted returns a key's URI fit for a log line or an error: a PKCS#11
// URI's pin-value attribute (RFC 7512 section 2.3) has its value replaced;
// pin-source, which names a file, stays. Other URIs and file names are
// returned unchanged: they hold no secret.
func Redacted(uri string) string {
	if !strings.HasPrefix(uri, "pkcs11:") {
		return uri
	}
	path, query, hasQuery := strings.Cut(uri, "?")
	path = redactAttrs(path, ";")
	if !hasQuery {
		return path
	}
	return path + "?" + redactAttrs(query, "&")
}

// redactAttrs replaces the value of every pin-value attribute in attrs,
// a list separated by sep.
func redactAttrs(attrs, sep string) string {
	parts := strings.Split(attrs, sep)
	for i, p := range parts {
		name, _, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimPrefix(name, "pkcs11:"), "pin-value") {
			parts[i] = strings.TrimSuffix(p, p[len(name)+1:]) + "REDACTED"
		}
	}
	return strings.Join(parts, sep)
}
