package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// The fast sign path for the end-entity SMKI profiles (device and
// organisation certificates), whose certificates differ only in a few
// fixed-length fields: the 16-byte serial, the 65-byte P-256 point and the
// 8-byte subjectKeyIdentifier derived from it, the 8-byte EUI-64 (in the
// hardwareModuleName SAN or the x500UniqueIdentifier) and the validity.
//
// crypto/x509.CreateCertificate verifies the signature it makes, so building
// each certificate with it costs a verification on top of the one the
// read-back does. Instead, the TBSCertificate of each (issuer, profile) is
// built once by crypto/x509 with placeholder values, prepared and linted as
// any certificate is (zlint over the stand-in copy, the SMKI profile lints,
// the SMKI reader), and checked: the offsets of the varying fields are found
// and the patched TBS must equal, byte for byte, what crypto/x509 builds for
// the first real certificate. Each certificate is then the template with its
// fields patched in, its own fields checked (checkVarying), SHA-256 of the
// TBS signed once by the issuer's key, and read back with the SMKI reader,
// which verifies the signature.

// tbsTemplate is the TBSCertificate of one issuer and profile with the
// offsets of the fields patched per certificate.
type tbsTemplate struct {
	tbs    []byte
	sigAlg []byte // the signature AlgorithmIdentifier, DER

	serial, point, ski, eui int // offsets of the 16-, 65-, 8- and 8-byte fields
	notBefore, notAfter     timeField

	// broken is set when the patched TBS differed from crypto/x509's: the
	// profile then always takes the slow path.
	broken bool
}

// timeField is an encoded UTCTime or GeneralizedTime in the TBS.
type timeField struct {
	off int        // offset of the contents
	tag cbasn1.Tag // UTCTime or GeneralizedTime
	n   int        // contents length
}

// tbsCache holds an issuer's templates by profile key.
type tbsCache struct {
	mu sync.Mutex
	m  map[string]*tbsTemplate
}

// fastKind reports whether certificates of kind k take the fast path.
func fastKind(k Kind) bool { return k == KindDevice || k == KindOrg }

// profileKey names the template a certificate of t uses: everything but
// the patched fields, and the encodings of its times (which decide their
// lengths).
func profileKey(t *template) string {
	return fmt.Sprintf("%s|%s|%d|%q|%s|%d|%d", t.kind, t.usage, t.role, t.name, t.hwType.String(),
		timeTag(t.cert.NotBefore), timeTag(t.cert.NotAfter))
}

// timeTag is the encoding crypto/x509 uses for a validity time (RFC 5280
// section 4.1.2.5): UTCTime through 2049, GeneralizedTime from 2050.
func timeTag(t time.Time) cbasn1.Tag {
	if y := t.UTC().Year(); y >= 1950 && y < 2050 {
		return cbasn1.UTCTime
	}
	return cbasn1.GeneralizedTime
}

func encodeTime(t time.Time) []byte {
	if timeTag(t) == cbasn1.UTCTime {
		return []byte(t.UTC().Format("060102150405Z"))
	}
	return []byte(t.UTC().Format("20060102150405Z"))
}

// placeholderTemplate rebuilds t's profile with pub, eui and the same
// times.
func placeholderTemplate(t *template, pub crypto.PublicKey, eui smki.EUI) (*template, error) {
	now := t.cert.NotBefore.Add(backdate)
	switch t.kind {
	case KindDevice:
		return deviceTemplate(pub, t.hwType, eui, Usage(t.usage), now)
	case KindOrg:
		return orgTemplate(pub, t.name, smki.Role(t.role), eui, Usage(t.usage), now)
	}
	return nil, fmt.Errorf("ca: no fast path for %s certificates", t.kind)
}

// tbsFor returns the template for t's profile under iss, building, linting
// and checking it on first use; nil (with no error) if the profile must
// take the slow path.
func (a *Authority) tbsFor(iss *issuer, t *template, sn *big.Int, now time.Time) (*tbsTemplate, error) {
	key := profileKey(t)
	iss.tbs.mu.Lock()
	defer iss.tbs.mu.Unlock()
	if tt, ok := iss.tbs.m[key]; ok {
		if tt.broken {
			return nil, nil
		}
		return tt, nil
	}
	tt, err := a.buildTBS(iss, t, now)
	if err != nil {
		return nil, err
	}
	if tt.broken {
		iss.tbs.put(key, tt)
		return nil, nil
	}
	// Check the offsets once: the first real certificate, patched, must be
	// what crypto/x509 builds.
	want, err := a.slowTBS(iss, t, sn)
	if err != nil {
		return nil, err
	}
	if got, ok := tt.patch(t, sn); !ok || !bytes.Equal(got, want) {
		tt.broken = true
		a.log.Warn("fast sign path disabled for a profile: patched TBS differs from crypto/x509's", "ca", iss.rec.Name, "profile", key)
	}
	iss.tbs.put(key, tt)
	if tt.broken {
		return nil, nil
	}
	return tt, nil
}

// put keeps tt for key; c.mu is held.
func (c *tbsCache) put(key string, tt *tbsTemplate) {
	if c.m == nil {
		c.m = map[string]*tbsTemplate{}
	}
	c.m[key] = tt
}

// slowTBS is the TBS crypto/x509 builds for t with serial sn under iss.
func (a *Authority) slowTBS(iss *issuer, t *template, sn *big.Int) ([]byte, error) {
	c := *t.cert
	c.SerialNumber = sn
	c.ExtraExtensions = t.extraExts
	der, err := x509.CreateCertificate(a.rand, &c, iss.lintParent, c.PublicKey, a.lintKey)
	if err != nil {
		return nil, fmt.Errorf("ca: preparing %s certificate: %w", t.kind, err)
	}
	return tbsOf(der)
}

// buildTBS builds t's profile with placeholder serial, key and EUI, lints
// it as sign does, and finds the offsets of the varying fields.
func (a *Authority) buildTBS(iss *issuer, t *template, now time.Time) (*tbsTemplate, error) {
	k, err := custody.Generate(a.rand)
	if err != nil {
		return nil, fmt.Errorf("ca: placeholder key: %w", err)
	}
	var eui smki.EUI
	if _, err := a.rand.Read(eui[:]); err != nil {
		return nil, fmt.Errorf("ca: placeholder EUI: %w", err)
	}
	sn, err := a.serial()
	if err != nil {
		return nil, err
	}
	pt, err := placeholderTemplate(t, k.Public(), eui)
	if err != nil {
		return nil, err
	}
	tmpl := *pt.cert
	tmpl.SerialNumber = sn
	tmpl.ExtraExtensions = pt.extraExts
	if a.lint != nil {
		zt := tmpl
		zt.ExtraExtensions = standInPolicies(pt.extraExts)
		pre, err := x509.CreateCertificate(a.rand, &zt, iss.lintParent, tmpl.PublicKey, a.lintKey)
		if err != nil {
			return nil, fmt.Errorf("ca: preparing %s certificate: %w", t.kind, err)
		}
		if err := a.lint.check(pre, pt, now); err != nil {
			return nil, fmt.Errorf("issuing %s certificate: %w", t.kind, err)
		}
	}
	exact, err := x509.CreateCertificate(a.rand, &tmpl, iss.lintParent, tmpl.PublicKey, a.lintKey)
	if err != nil {
		return nil, fmt.Errorf("ca: preparing %s certificate: %w", t.kind, err)
	}
	if a.lint != nil {
		if err := smkiLint(exact, pt); err != nil {
			return nil, fmt.Errorf("issuing %s certificate: %w", t.kind, err)
		}
	}
	point, err := k.Public().(*ecdsa.PublicKey).Bytes()
	if err != nil {
		return nil, fmt.Errorf("ca: placeholder key: %w", err)
	}
	tt, err := locateTBS(exact, sn, point, pt.cert.SubjectKeyId, eui[:])
	if err != nil {
		// Not this profile's fault (a placeholder's bytes found twice, say):
		// its certificates take the slow path.
		a.log.Warn("fast sign path disabled for a profile", "ca", iss.rec.Name, "kind", string(t.kind), "err", err)
		return &tbsTemplate{broken: true}, nil
	}
	return tt, nil
}

// locateTBS finds the varying fields in the certificate der, whose
// placeholders are sn, point, ski and eui: the serial, validity and key by
// the TBS's structure, the SKI and EUI as the only occurrence of their
// bytes.
func locateTBS(der []byte, sn *big.Int, point, ski, eui []byte) (*tbsTemplate, error) {
	var outer, tbsEl, alg cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&tbsEl, cbasn1.SEQUENCE) ||
		!outer.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("malformed certificate")
	}
	tbs := []byte(tbsEl)
	tt := &tbsTemplate{tbs: bytes.Clone(tbs), sigAlg: bytes.Clone(alg)}
	var body cryptobyte.String
	s := cryptobyte.String(tbs)
	if !s.ReadASN1(&body, cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("malformed TBSCertificate")
	}
	pos := func() int { return len(tbs) - len(body) }
	var el cryptobyte.String
	var tag cbasn1.Tag
	if !body.ReadAnyASN1Element(&el, &tag) || tag != cbasn1.Tag(0).ContextSpecific().Constructed() {
		return nil, fmt.Errorf("no version")
	}
	start := pos()
	if !body.ReadAnyASN1Element(&el, &tag) || tag != cbasn1.INTEGER || len(el) != 18 || el[1] != 16 ||
		!bytes.Equal(el[2:], sn.FillBytes(make([]byte, 16))) {
		return nil, fmt.Errorf("serial is not a 16-byte INTEGER")
	}
	tt.serial = start + 2
	if !body.SkipASN1(cbasn1.SEQUENCE) || !body.SkipASN1(cbasn1.SEQUENCE) { // signature, issuer
		return nil, fmt.Errorf("malformed signature or issuer")
	}
	start = pos()
	if !body.ReadASN1Element(&el, cbasn1.SEQUENCE) || len(el) < 2 || el[1] >= 0x80 {
		return nil, fmt.Errorf("malformed validity")
	}
	v := el[2:]
	off := start + 2
	for _, f := range []*timeField{&tt.notBefore, &tt.notAfter} {
		if len(v) < 2 || v[1] >= 0x80 || len(v) < 2+int(v[1]) {
			return nil, fmt.Errorf("malformed validity time")
		}
		*f = timeField{off: off + 2, tag: cbasn1.Tag(v[0]), n: int(v[1])}
		off += 2 + int(v[1])
		v = v[2+int(v[1]):]
	}
	if !body.SkipASN1(cbasn1.SEQUENCE) { // subject
		return nil, fmt.Errorf("malformed subject")
	}
	start = pos()
	if !body.ReadASN1Element(&el, cbasn1.SEQUENCE) || len(el) < len(point) || !bytes.Equal(el[len(el)-len(point):], point) {
		return nil, fmt.Errorf("subjectPublicKeyInfo does not end with the key's point")
	}
	tt.point = start + len(el) - len(point)
	var err error
	if tt.ski, err = onlyIndex(tbs, ski, "subjectKeyIdentifier"); err != nil {
		return nil, err
	}
	if tt.eui, err = onlyIndex(tbs, eui, "EUI-64"); err != nil {
		return nil, err
	}
	return tt, nil
}

func onlyIndex(b, sub []byte, what string) (int, error) {
	i := bytes.Index(b, sub)
	if i < 0 || bytes.Index(b[i+1:], sub) >= 0 {
		return 0, fmt.Errorf("%s placeholder not found exactly once", what)
	}
	return i, nil
}

// patch returns the TBS of t with serial sn; false if t's fields do not
// fit the template's (which profileKey should prevent).
func (tt *tbsTemplate) patch(t *template, sn *big.Int) ([]byte, bool) {
	k, ok := t.cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, false
	}
	point, err := k.Bytes()
	nb, na := encodeTime(t.cert.NotBefore), encodeTime(t.cert.NotAfter)
	if err != nil || len(point) != 65 || len(t.cert.SubjectKeyId) != 8 || sn.Sign() <= 0 || sn.BitLen() > 127 ||
		timeTag(t.cert.NotBefore) != tt.notBefore.tag || len(nb) != tt.notBefore.n ||
		timeTag(t.cert.NotAfter) != tt.notAfter.tag || len(na) != tt.notAfter.n {
		return nil, false
	}
	out := bytes.Clone(tt.tbs)
	sn.FillBytes(out[tt.serial : tt.serial+16])
	copy(out[tt.point:], point)
	copy(out[tt.ski:], t.cert.SubjectKeyId)
	copy(out[tt.eui:], t.eui[:])
	copy(out[tt.notBefore.off:], nb)
	copy(out[tt.notAfter.off:], na)
	return out, true
}

// checkVarying applies the SMKI profile lints to the fields that vary
// between certificates of one template (the rest was linted with the
// template): the key (P-256, uncompressed; e_smki_key_p256_uncompressed),
// its identifier (e_smki_ski_method2), the serial (e_serial_64_bits) and
// the validity (e_smki_validity_current, e_smki_device_not_after).
func checkVarying(t *template, sn *big.Int, now time.Time) error {
	var failed []string
	if !uncompressedP256(t.cert.PublicKey) {
		failed = append(failed, "e_smki_key_p256_uncompressed (subject key is not an uncompressed P-256 point)")
	}
	if want, err := KeyID(t.cert.PublicKey); err != nil || !bytes.Equal(t.cert.SubjectKeyId, want) {
		failed = append(failed, "e_smki_ski_method2 (subjectKeyIdentifier is not the key's)")
	}
	if sn.Sign() <= 0 || sn.BitLen() > 159 || sn.BitLen() < 64 {
		failed = append(failed, fmt.Sprintf("e_serial_64_bits (serial has %d bits)", sn.BitLen()))
	}
	if t.cert.NotBefore.After(now.Add(backdate)) || !t.cert.NotAfter.After(t.cert.NotBefore) {
		failed = append(failed, "e_smki_validity_current (validity not current)")
	}
	if t.kind == KindDevice && !t.cert.NotAfter.Equal(deviceNotAfter) {
		failed = append(failed, "e_smki_device_not_after (notAfter is not 99991231235959Z)")
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s", ErrLint, strings.Join(failed, "; "))
	}
	return nil
}

func uncompressedP256(pub crypto.PublicKey) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	pt, err := k.Bytes()
	return err == nil && len(pt) == 65 && pt[0] == 4
}

// signFast issues t with serial sn from its profile's template: patch,
// check, one signature, read back (one verification).
func (a *Authority) signFast(ctx context.Context, iss *issuer, t *template, tt *tbsTemplate, sn *big.Int, now time.Time) (*issued, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkVarying(t, sn, now); err != nil {
		return nil, fmt.Errorf("issuing %s certificate: %w", t.kind, err)
	}
	tbs, ok := tt.patch(t, sn)
	if !ok {
		return nil, fmt.Errorf("ca: %s certificate does not fit its template", t.kind)
	}
	digest := sha256.Sum256(tbs)
	sig, err := iss.key.Sign(a.rand, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("ca: signing %s certificate: %w", t.kind, err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddBytes(tt.sigAlg)
		b.AddASN1BitString(sig)
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ca: encoding %s certificate: %w", t.kind, err)
	}
	out := &issued{der: der}
	if err := a.readBack(iss, t, der, tbs, out); err != nil {
		return nil, err
	}
	rec := store.Certificate{CA: iss.rec.Name, Serial: sn.Bytes(), Kind: storeKind(t.kind), Role: t.role,
		UserRole: t.userRole, Usage: t.usage, NotBefore: t.cert.NotBefore, NotAfter: t.cert.NotAfter, DER: der}
	if t.hasEUI {
		rec.EUI = t.eui.String()
	}
	out.record = rec
	return out, nil
}
