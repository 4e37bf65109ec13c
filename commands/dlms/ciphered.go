package dlms

// CipheredBlocks returns, in order, the octet-string nodes of a that hold
// ciphered blocks (gbcs-payloads.md 2.1): in an ACCESS-Response, the second
// element of every list-of-data element shaped
// structure(2){protection-parameters, octet-string}; in a DATA-NOTIFICATION,
// the element after the protection parameters of an alert structure whose
// third element is protection parameters (ECS68). The pointers alias a, so
// a caller can decrypt a block from Bytes and write the result, or a new
// block, back in place. An APDU with no ciphered block gives nil.
func CipheredBlocks(a *APDU) []*Data {
	var out []*Data
	switch {
	case a.AccessResponse != nil:
		for i := range a.AccessResponse.Data {
			e := &a.AccessResponse.Data[i]
			if e.Tag == TagStructure && len(e.Elems) == 2 && isProtectionParameters(e.Elems[0]) &&
				e.Elems[1].Tag == TagOctetString {
				out = append(out, &e.Elems[1])
			}
		}
	case a.DataNotification != nil:
		b := &a.DataNotification.Body
		if b.Tag == TagStructure && len(b.Elems) >= 4 && isProtectionParameters(b.Elems[2]) &&
			b.Elems[3].Tag == TagOctetString {
			out = append(out, &b.Elems[3])
		}
	}
	return out
}

// CipheredBlock is the layout of a ciphered block (gbcs-payloads.md 2.2):
// security control 31, a 4-byte invocation counter (zero in GBCS), the
// ciphertext and a 12-byte GCM tag. It is for display; decryption is the
// caller's.
type CipheredBlock struct {
	SecurityControl   uint8    `json:"security-control"`
	InvocationCounter uint32   `json:"invocation-counter"`
	Ciphertext        HexBytes `json:"ciphertext"`
	Tag               HexBytes `json:"tag"`
}

// cipheredOverhead is the security header (5) and the tag (12).
const cipheredOverhead = 5 + 12

// ParseCipheredBlock splits b, the contents of a ciphered octet-string,
// into its parts. It refuses a block shorter than header and tag; it does
// not check the security control value.
func ParseCipheredBlock(b []byte) (CipheredBlock, error) {
	if len(b) < cipheredOverhead {
		return CipheredBlock{}, parseErr("ciphered-block", 0, "%d bytes, want at least %d", len(b), cipheredOverhead)
	}
	return CipheredBlock{
		SecurityControl:   b[0],
		InvocationCounter: uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]),
		Ciphertext:        b[5 : len(b)-12],
		Tag:               b[len(b)-12:],
	}, nil
}

// AppendBinary appends the block's bytes to b.
func (c CipheredBlock) AppendBinary(b []byte) ([]byte, error) {
	if len(c.Tag) != 12 {
		return nil, invalid("ciphered block tag of %d bytes, want 12", len(c.Tag))
	}
	b = append(b, c.SecurityControl, byte(c.InvocationCounter>>24), byte(c.InvocationCounter>>16),
		byte(c.InvocationCounter>>8), byte(c.InvocationCounter))
	b = append(b, c.Ciphertext...)
	return append(b, c.Tag...), nil
}
