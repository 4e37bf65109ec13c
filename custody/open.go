package custody

import (
	"fmt"
	"path/filepath"
	"strings"
)

// OpenAgreement opens the key-agreement key named in full by uri, for a
// process that has no Custody (the router's access control broker key): a
// PKCS#11 URI naming module, token, key and PIN (see OpenToken),
// "softkms:path=FILE", or a file path. A relative file is resolved against
// dir when dir is not empty. The caller calls closeKey when done with the
// key.
func OpenAgreement(uri, dir string) (key Agreement, closeKey func(), err error) {
	return OpenKey(uri, dir)
}

// OpenKey opens the key named in full by uri, as OpenAgreement does, for
// signing as well as key agreement: a user's digital-signing or
// key-agreement key, from a key file, "softkms:path=FILE" or a PKCS#11 URI
// (the key then never leaves the token). The caller calls closeKey when
// done with the key.
func OpenKey(uri, dir string) (key Key, closeKey func(), err error) {
	if strings.HasPrefix(uri, "pkcs11:") {
		t, err := OpenToken(uri)
		if err != nil {
			return nil, nil, err
		}
		return t, func() { _ = t.Close() }, nil
	}
	path := uri
	switch {
	case strings.HasPrefix(uri, "softkms:"):
		path = strings.TrimPrefix(strings.TrimPrefix(uri, "softkms:"), "path=")
	case strings.Contains(uri, ":") && !filepath.IsAbs(uri):
		return nil, nil, fmt.Errorf("%w: unsupported key URI scheme %q", ErrConfig, scheme(uri))
	}
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	k, err := ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return k, func() {}, nil
}
