package provision

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// Format is the value of the header's "format" field this package reads.
const Format = "metertrust-provisioning/1"

// Sentinel errors of package provision, usable with errors.Is.
var (
	// ErrFormat is returned for a file that is not a provisioning file: a
	// bad header, a header count that disagrees with the lines, an empty
	// file. It always refuses the whole file.
	ErrFormat = errors.New("provision: malformed provisioning file")
	// ErrLimit is returned for a file over one of its Options' limits. It
	// always refuses the whole file.
	ErrLimit = errors.New("provision: provisioning file over a limit")
	// ErrEntry is wrapped, through an *EntryError, by every refusal of one
	// device line.
	ErrEntry = errors.New("provision: device entry refused")
	// ErrDuplicate is wrapped with ErrEntry by the refusal of a device whose
	// EUI-64 an earlier line of the file already lists.
	ErrDuplicate = errors.New("provision: device listed twice")
	// ErrSignature is returned when the detached signature does not verify
	// under the manufacturer's certificate, or cannot be read.
	ErrSignature = errors.New("provision: file signature does not verify")
	// ErrCertificate is returned for a manufacturer's certificate that
	// cannot sign a provisioning file: not an organisation certificate, or
	// not a digital-signing one.
	ErrCertificate = errors.New("provision: manufacturer certificate refused")
)

// DeviceType is a GBCS device type that holds SMKI device certificates.
type DeviceType string

// The device types a provisioning file may list: the GBCS Type 1 devices,
// which hold their own keys and certificates.
const (
	ESME   DeviceType = "ESME"   // electricity smart metering equipment
	GSME   DeviceType = "GSME"   // gas smart metering equipment
	CHF    DeviceType = "CHF"    // communications hub function
	GPF    DeviceType = "GPF"    // gas proxy function
	PPMID  DeviceType = "PPMID"  // prepayment interface device
	HCALCS DeviceType = "HCALCS" // HAN-connected auxiliary load control switch
	SAPC   DeviceType = "SAPC"   // standalone auxiliary proportional controller
)

// DeviceTypes lists the known device types.
var DeviceTypes = []DeviceType{ESME, GSME, CHF, GPF, PPMID, HCALCS, SAPC}

// Valid reports whether t is a known device type (exact, upper case).
func (t DeviceType) Valid() bool { return slices.Contains(DeviceTypes, t) }

// Header is the first line of a provisioning file.
type Header struct {
	// Format is always Format.
	Format string `json:"format"`
	// Manufacturer is the EUI-64 of the manufacturer's organisation
	// certificate, the one whose key signs the file.
	Manufacturer smki.EUI `json:"manufacturer"`
	// Created is when the manufacturer wrote the file (RFC 3339).
	Created time.Time `json:"created"`
	// Devices is the number of device lines that follow.
	Devices int `json:"devices"`
}

// Entry is one device of a file, checked.
type Entry struct {
	// Line is the entry's line number in the file (the header is line 1).
	Line       int
	EUI        smki.EUI
	DeviceType DeviceType
	// CSRs are the device's requests in file order, each a device request
	// naming EUI, at most one per key usage.
	CSRs []*smki.CSR
}

// File is a read provisioning file.
type File struct {
	Header Header
	// Entries are the devices accepted, in file order.
	Entries []Entry
	// Refused lists the device lines refused in skip-bad mode (always
	// empty otherwise: the first refusal fails Read).
	Refused []*EntryError
	// SHA256 is the digest of the bytes read, for the audit log.
	SHA256 [32]byte
	// Size is the number of bytes read.
	Size int64
}

// Certificates returns the number of requests of the accepted entries.
func (f *File) Certificates() int {
	n := 0
	for _, e := range f.Entries {
		n += len(e.CSRs)
	}
	return n
}

// EntryError is the refusal of one device line: its line number, the
// EUI-64 as the line gives it (empty when the line has none) and why. It
// wraps ErrEntry and its cause.
type EntryError struct {
	Line int
	EUI  string
	Err  error
}

func (e *EntryError) Error() string {
	if e.EUI == "" {
		return fmt.Sprintf("provision: line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("provision: line %d, device %s: %v", e.Line, e.EUI, e.Err)
}

// Unwrap returns ErrEntry and the cause.
func (e *EntryError) Unwrap() []error { return []error{ErrEntry, e.Err} }

// MarshalJSON writes {"line": ..., "eui": ..., "reason": ...}.
func (e *EntryError) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Line   int    `json:"line"`
		EUI    string `json:"eui,omitempty"`
		Reason string `json:"reason"`
	}{e.Line, e.EUI, e.Err.Error()})
}

// Options bound and direct Read. Zero fields take the defaults.
type Options struct {
	// MaxLineBytes is the longest line accepted, without its LF (default
	// 16 KiB; a device with two requests takes under 1.5 KiB).
	MaxLineBytes int
	// MaxDevices is the most devices a file may list (default 100,000).
	MaxDevices int
	// MaxBytes is the largest file accepted (default 256 MiB).
	MaxBytes int64
	// SkipBad returns the good entries and the refused ones in
	// File.Refused instead of failing on the first bad device line. A bad
	// header, a count that disagrees with the lines or a limit exceeded
	// still refuse the whole file.
	SkipBad bool
}

// The default limits.
const (
	DefaultMaxLineBytes = 16 << 10
	DefaultMaxDevices   = 100_000
	DefaultMaxBytes     = 256 << 20
)

func (o Options) withDefaults() Options {
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.MaxDevices <= 0 {
		o.MaxDevices = DefaultMaxDevices
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return o
}

// maxCSRs is the most requests a device may carry: one per key usage.
const maxCSRs = 2

// Read reads and checks a provisioning file (see the package comment). The
// first refused device line fails it with an *EntryError, unless
// opts.SkipBad is set; every other error wraps ErrFormat or ErrLimit and
// names the line.
func Read(r io.Reader, opts Options) (*File, error) {
	opts = opts.withDefaults()
	h := sha256.New()
	counted := &countingReader{r: io.LimitReader(r, opts.MaxBytes+1)}
	br := bufio.NewReaderSize(io.TeeReader(counted, h), 64<<10)
	f := &File{}
	seen := map[smki.EUI]int{}
	lineNo := 0
	entries := 0
	for {
		line, err := readLine(br, opts.MaxLineBytes)
		if counted.n > opts.MaxBytes {
			return nil, fmt.Errorf("%w: file larger than %d bytes", ErrLimit, opts.MaxBytes)
		}
		if err == io.EOF {
			break
		}
		lineNo++
		if errors.Is(err, errLongLine) {
			return nil, fmt.Errorf("%w: line %d: longer than %d bytes", ErrLimit, lineNo, opts.MaxLineBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("provision: reading line %d: %w", lineNo, err)
		}
		if lineNo == 1 {
			if f.Header, err = parseHeader(line); err != nil {
				return nil, fmt.Errorf("%w: line 1 (header): %w", ErrFormat, err)
			}
			if f.Header.Devices > opts.MaxDevices {
				return nil, fmt.Errorf("%w: line 1 (header): %d devices, at most %d accepted", ErrLimit, f.Header.Devices, opts.MaxDevices)
			}
			continue
		}
		entries++
		if entries > opts.MaxDevices {
			return nil, fmt.Errorf("%w: line %d: more than %d devices", ErrLimit, lineNo, opts.MaxDevices)
		}
		e, err := parseEntry(line, lineNo)
		if err == nil {
			if first, dup := seen[e.EUI]; dup {
				err = &EntryError{Line: lineNo, EUI: e.EUI.String(), Err: fmt.Errorf("%w: already on line %d", ErrDuplicate, first)}
			} else {
				seen[e.EUI] = lineNo
			}
		}
		if err != nil {
			var ee *EntryError
			if !errors.As(err, &ee) || !opts.SkipBad {
				return nil, err
			}
			f.Refused = append(f.Refused, ee)
			continue
		}
		f.Entries = append(f.Entries, e)
	}
	if lineNo == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrFormat)
	}
	if entries != f.Header.Devices {
		return nil, fmt.Errorf("%w: line 1 (header): says %d devices, the file has %d", ErrFormat, f.Header.Devices, entries)
	}
	f.Size = counted.n
	copy(f.SHA256[:], h.Sum(nil))
	return f, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var errLongLine = errors.New("line too long")

// readLine returns the next line without its LF (the last line may lack
// one), errLongLine for a line over max bytes, io.EOF at the end.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max+1 {
			return nil, errLongLine
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) > 0:
			if len(line) > max {
				return nil, errLongLine
			}
			return line, nil
		default:
			return nil, err
		}
	}
}

// header is the header's JSON form.
type header struct {
	Format       string `json:"format"`
	Manufacturer string `json:"manufacturer"`
	Created      string `json:"created"`
	Devices      int    `json:"devices"`
}

func parseHeader(line []byte) (Header, error) {
	var h header
	if err := decodeStrict(line, &h, "format", "manufacturer", "created", "devices"); err != nil {
		return Header{}, err
	}
	if h.Format != Format {
		return Header{}, fmt.Errorf("format %q: want %q", h.Format, Format)
	}
	m, err := parseEUI(h.Manufacturer)
	if err != nil {
		return Header{}, fmt.Errorf("manufacturer: %w", err)
	}
	created, err := time.Parse(time.RFC3339, h.Created)
	if err != nil {
		return Header{}, fmt.Errorf("created %q: not an RFC 3339 time", h.Created)
	}
	if h.Devices < 0 {
		return Header{}, fmt.Errorf("devices %d: must not be negative", h.Devices)
	}
	return Header{Format: h.Format, Manufacturer: m, Created: created, Devices: h.Devices}, nil
}

// entry is a device line's JSON form.
type entry struct {
	EUI        string   `json:"eui"`
	DeviceType string   `json:"deviceType"`
	CSRs       []string `json:"csrs"`
}

func parseEntry(line []byte, lineNo int) (Entry, error) {
	var j entry
	if err := decodeStrict(line, &j, "eui", "deviceType", "csrs"); err != nil {
		// Name the device if the line names one at all.
		var name struct {
			EUI string `json:"eui"`
		}
		_ = json.Unmarshal(line, &name)
		return Entry{}, &EntryError{Line: lineNo, EUI: name.EUI, Err: err}
	}
	fail := func(format string, args ...any) (Entry, error) {
		return Entry{}, &EntryError{Line: lineNo, EUI: j.EUI, Err: fmt.Errorf(format, args...)}
	}
	eui, err := parseEUI(j.EUI)
	if err != nil {
		return fail("eui: %w", err)
	}
	j.EUI = eui.String()
	e := Entry{Line: lineNo, EUI: eui, DeviceType: DeviceType(j.DeviceType)}
	if !e.DeviceType.Valid() {
		return fail("deviceType %q: want one of %s", j.DeviceType, typeList())
	}
	if len(j.CSRs) == 0 || len(j.CSRs) > maxCSRs {
		return fail("%d requests: want 1 or 2 (one per key: digitalSignature, keyAgreement)", len(j.CSRs))
	}
	var usages x509.KeyUsage
	for i, s := range j.CSRs {
		der, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return fail("csrs[%d]: not base64: %v", i, err)
		}
		c, err := smki.ParseCSR(der)
		if err != nil {
			return fail("csrs[%d]: %w", i, err)
		}
		switch {
		case c.Kind != smki.KindDevice:
			return fail("csrs[%d]: an organisation request: a device request has an empty subject", i)
		case c.EUI != eui:
			return fail("csrs[%d]: requested for device %s (hardwareModuleName), the line is for %s", i, c.EUI, eui)
		case usages&c.KeyUsage != 0:
			return fail("csrs[%d]: a second %s request", i, smki.KeyUsageString(c.KeyUsage))
		}
		usages |= c.KeyUsage
		e.CSRs = append(e.CSRs, c)
	}
	return e, nil
}

func typeList() string {
	s := make([]string, len(DeviceTypes))
	for i, t := range DeviceTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// parseEUI accepts exactly 16 hex digits, not the zero EUI-64.
func parseEUI(s string) (smki.EUI, error) {
	if len(s) != 16 {
		return smki.EUI{}, fmt.Errorf("%q: want 16 hex digits", s)
	}
	e, err := smki.ParseEUI(s)
	if err != nil {
		return smki.EUI{}, err
	}
	if e.IsZero() {
		return smki.EUI{}, fmt.Errorf("%q: the zero EUI-64 names nothing", s)
	}
	return e, nil
}

// decodeStrict decodes one JSON object into v, refusing what
// encoding/json lets through: a field name in another case, a repeated or
// unknown field, a missing one, data after the object.
func decodeStrict(line []byte, v any, fields ...string) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %v", err)
		}
		k, _ := t.(string)
		switch {
		case !slices.Contains(fields, k):
			return fmt.Errorf("unknown field %q", k)
		case seen[k]:
			return fmt.Errorf("field %q repeated", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("invalid JSON: %v", err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	for _, k := range fields {
		if !seen[k] {
			return fmt.Errorf("field %q missing", k)
		}
	}
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %q: a JSON %s where a %s belongs", te.Field, te.Value, te.Type)
		}
		return fmt.Errorf("invalid JSON: %v", err)
	}
	return nil
}
