package custody

import "testing"

func TestRedacted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"keys/acb-ka.key", "keys/acb-ka.key"},
		{"softkms:path=keys/acb.key", "softkms:path=keys/acb.key"},
		{"pkcs11:token=dcc;object=acb-ka?pin-source=/etc/metertrust/pin", "pkcs11:token=dcc;object=acb-ka?pin-source=/etc/metertrust/pin"},
		{"pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=t;object=k?pin-value=1234",
			"pkcs11:module-path=/usr/lib/softhsm/libsofthsm2.so;token=t;object=k?pin-value=REDACTED"},
		{"pkcs11:token=t?module-path=/x.so&pin-value=secret&x=1", "pkcs11:token=t?module-path=/x.so&pin-value=REDACTED&x=1"},
		{"pkcs11:pin-value=secret;token=t", "pkcs11:pin-value=REDACTED;token=t"},
		{"pkcs11:token=t;PIN-VALUE=secret", "pkcs11:token=t;PIN-VALUE=REDACTED"},
	} {
		if got := Redacted(tc.in); got != tc.want {
			t.Errorf("Redacted(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
