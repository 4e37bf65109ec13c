package operator

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of HashPassword (decision 020): OWASP's first
// recommendation for argon2id (19 MiB, two passes, one lane), about 30 ms
// on this project's machines; a hash records its own parameters, so they
// can be raised later without invalidating the passwords already set.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// Limits of what CheckPassword accepts of a stored hash, so that a hash
// written by hand cannot make each login cost a gigabyte or a minute.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 16
	maxArgonThreads   = 16
)

// Password length bounds. The upper one bounds the work an unauthenticated
// login form can ask for; the lower one is NIST SP 800-63B's minimum for a
// memorised secret chosen by its user.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// ErrPassword is wrapped by errors about a password that may not be set.
var ErrPassword = errors.New("operator: unacceptable password")

// CheckNewPassword reports why pw may not be an operator's password: too
// short or long (counted in characters), or not UTF-8.
func CheckNewPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: not valid UTF-8", ErrPassword)
	case n < MinPasswordLen:
		return fmt.Errorf("%w: %d characters, at least %d are needed", ErrPassword, n, MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrPassword, MaxPasswordLen)
	}
	return nil
}

// HashPassword returns pw's argon2id hash in the PHC string format
// ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>", unpadded base64), with
// a fresh salt from r (crypto/rand if nil): the form in which
// Credential.PasswordArgon2id holds it.
func HashPassword(r io.Reader, pw string) (string, error) {
	if err := CheckNewPassword(pw); err != nil {
		return "", err
	}
	if r == nil {
		r = rand.Reader
	}
	salt := make([]byte, argonSaltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("operator: reading randomness for a salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// argonHash is a parsed PHC argon2id string.
type argonHash struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// parseArgon2id reads a PHC argon2id string, refusing parameters beyond the
// limits above; the error completes a sentence whose subject is the field.
func parseArgon2id(s string) (argonHash, error) {
	var h argonHash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, errors.New(`is not an argon2id hash in PHC form ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"; set it with "metertrust operator passwd")`)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return h, fmt.Errorf("has version %q, want v=%d", parts[2], argon2.Version)
	}
	var m, t, p uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) != parts[3] {
		return h, fmt.Errorf("has parameters %q, want m=<KiB>,t=<passes>,p=<lanes>", parts[3])
	}
	if m < 8*p || m > maxArgonMemoryKiB || t < 1 || t > maxArgonTime || p < 1 || p > maxArgonThreads {
		return h, fmt.Errorf("has parameters %s outside m 8p..%d KiB, t 1..%d, p 1..%d", parts[3], maxArgonMemoryKiB, maxArgonTime, maxArgonThreads)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return h, errors.New("has a salt that is not at least 8 bytes of unpadded base64")
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return h, errors.New("has a hash that is not 16 to 64 bytes of unpadded base64")
	}
	return argonHash{memory: m, time: t, threads: uint8(p), salt: salt, key: key}, nil
}

// check reports, in constant time in the key's bytes, whether pw hashes to h.
func (h argonHash) check(pw string) bool {
	got := argon2.IDKey([]byte(pw), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// dummyHash is checked for a login under a name that has no password, so
// that the time taken does not tell which names exist.
var dummyHash = argonHash{memory: argonMemoryKiB, time: argonTime, threads: argonThreads,
	salt: make([]byte, argonSaltLen), key: make([]byte, argonKeyLen)}
