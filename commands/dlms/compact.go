package dlms

// TypeDesc is the type description of a compact array (gbcs-payloads.md
// 4.2): a simple type (its tag alone), an array of Count elements of one
// type (01 nn nn <type>), or a structure of element types (02 c <type>...).
type TypeDesc struct {
	// Tag is the type: a simple tag, TagArray or TagStructure.
	Tag Tag
	// Count is the number of elements of an array.
	Count uint16
	// Elems holds the element types of a structure, or the single element
	// type of an array.
	Elems []TypeDesc
}

// Equal reports whether t and u describe the same type.
func (t TypeDesc) Equal(u TypeDesc) bool {
	if t.Tag != u.Tag || t.Count != u.Count || len(t.Elems) != len(u.Elems) {
		return false
	}
	for i := range t.Elems {
		if !t.Elems[i].Equal(u.Elems[i]) {
			return false
		}
	}
	return true
}

// String returns a compact notation, such as "structure{06,06}" or
// "array(48){06}".
func (t TypeDesc) String() string {
	switch t.Tag {
	case TagStructure:
		s := "structure{"
		for i, e := range t.Elems {
			if i > 0 {
				s += ","
			}
			s += e.String()
		}
		return s + "}"
	case TagArray:
		s := "array(" + itoa(int(t.Count)) + "){"
		if len(t.Elems) == 1 {
			s += t.Elems[0].String()
		}
		return s + "}"
	}
	return hex2(byte(t.Tag))
}

// minSize returns the fewest content bytes an element of type t takes, and
// an error for descriptions this package refuses: unknown or nested compact
// types, and arrays whose elements take no bytes (which would let a few
// input bytes describe an unbounded number of elements).
func (t *TypeDesc) minSize(depth int) (int, error) {
	if depth > maxDepth {
		return 0, invalid("type description nested deeper than %d", maxDepth)
	}
	switch t.Tag.kind() {
	case kindUnknown:
		return 0, invalid("type description has unknown tag 0x%02x", uint8(t.Tag))
	case kindCompact:
		return 0, invalid("type description nests a compact-array")
	case kindNull:
		return 0, nil
	case kindInt, kindUint, kindFixed:
		return t.Tag.size(), nil
	case kindString, kindBits:
		return 1, nil
	}
	if t.Tag == TagArray {
		if len(t.Elems) != 1 {
			return 0, invalid("array type description with %d element types, want 1", len(t.Elems))
		}
		m, err := t.Elems[0].minSize(depth + 1)
		if err != nil {
			return 0, err
		}
		if m == 0 && t.Count > 0 {
			return 0, invalid("array type description of elements that take no bytes")
		}
		return clampSize(int(t.Count) * m), nil
	}
	if len(t.Elems) > maxLength {
		return 0, invalid("structure type description of %d elements", len(t.Elems))
	}
	sum := 0
	for i := range t.Elems {
		m, err := t.Elems[i].minSize(depth + 1)
		if err != nil {
			return 0, err
		}
		sum = clampSize(sum + m)
	}
	return sum, nil
}

// clampSize caps a size computation just above anything a contents length
// can hold, so that nested array counts cannot overflow.
func clampSize(n int) int { return min(n, maxLength+1) }

func (t *TypeDesc) appendBinary(b []byte) []byte {
	b = append(b, byte(t.Tag))
	switch t.Tag {
	case TagArray:
		b = append(b, byte(t.Count>>8), byte(t.Count))
		if len(t.Elems) == 1 {
			b = t.Elems[0].appendBinary(b)
		}
	case TagStructure:
		b = appendLength(b, len(t.Elems), LengthMinimal)
		for i := range t.Elems {
			b = t.Elems[i].appendBinary(b)
		}
	}
	return b
}

// typeDesc reads a type description. Structure counts must be minimal.
func (r *reader) typeDesc(p *path, depth int) (TypeDesc, error) {
	if depth > maxDepth {
		return TypeDesc{}, parseErr(p.String(), r.off, "nested deeper than %d", maxDepth)
	}
	at := r.off
	c, err := r.byte(p.at())
	if err != nil {
		return TypeDesc{}, err
	}
	t := TypeDesc{Tag: Tag(c)}
	switch t.Tag.kind() {
	case kindUnknown:
		return TypeDesc{}, parseErr(p.String(), at, "unknown type tag 0x%02x", c)
	case kindCompact:
		return TypeDesc{}, parseErr(p.String(), at, "compact-array inside a type description")
	case kindList:
		if t.Tag == TagArray {
			n, err := r.uint(p.sub("count"), 2)
			if err != nil {
				return TypeDesc{}, err
			}
			t.Count = uint16(n)
			e, err := r.typeDesc(&path{parent: p, name: "array", index: -1}, depth+1)
			if err != nil {
				return TypeDesc{}, err
			}
			t.Elems = []TypeDesc{e}
			return t, nil
		}
		n, err := r.minimalLength(p.sub("count"))
		if err != nil {
			return TypeDesc{}, err
		}
		if n > r.remaining() {
			return TypeDesc{}, parseErr(p.String()+".count", at+1, "structure of %d element types, %d bytes remain", n, r.remaining())
		}
		t.Elems = make([]TypeDesc, n)
		for i := range t.Elems {
			if t.Elems[i], err = r.typeDesc(&path{parent: p, name: "structure", index: i}, depth+1); err != nil {
				return TypeDesc{}, err
			}
		}
	}
	return t, nil
}

// compact reads a compact array after its tag.
func (r *reader) compact(p *path, depth int) (Data, error) {
	tdAt := r.off
	td, err := r.typeDesc(&path{parent: p, name: "type-description", index: -1}, depth+1)
	if err != nil {
		return Data{}, err
	}
	minSize, err := td.minSize(0)
	if err == nil && minSize == 0 {
		err = invalid("elements of type %s take no bytes", td)
	}
	if err != nil {
		return Data{}, parseErr(p.String()+".type-description", tdAt, "%v", err)
	}
	lenAt := r.off
	n, form, err := r.length(p.sub("contents-length"))
	if err != nil {
		return Data{}, err
	}
	if n > r.remaining() {
		return Data{}, parseErr(p.String()+".contents-length", lenAt, "contents of %d bytes, %d remain", n, r.remaining())
	}
	end := r.off + n
	sub := &reader{b: r.b[:end], off: r.off}
	d := Data{Tag: TagCompactArray, Type: &td, Form: form}
	for i := 0; sub.remaining() > 0; i++ {
		if sub.remaining() < minSize {
			return Data{}, parseErr(p.String()+".contents", sub.off, "%d bytes left, element %d of type %s takes at least %d", sub.remaining(), i, td, minSize)
		}
		e, err := sub.untagged(&path{parent: p, name: "element", index: i}, &td, depth+1)
		if err != nil {
			return Data{}, err
		}
		d.Elems = append(d.Elems, e)
	}
	r.off = end
	return d, nil
}

// untagged reads one compact-array element of type td.
func (r *reader) untagged(p *path, td *TypeDesc, depth int) (Data, error) {
	if depth > maxDepth {
		return Data{}, parseErr(p.String(), r.off, "nested deeper than %d", maxDepth)
	}
	switch td.Tag {
	case TagArray, TagStructure:
		n := len(td.Elems)
		if td.Tag == TagArray {
			n = int(td.Count)
		}
		d := Data{Tag: td.Tag, Elems: make([]Data, n)}
		var err error
		kids := make([]path, n) // one allocation for the elements' paths
		for i := range d.Elems {
			et := &td.Elems[0]
			if td.Tag == TagStructure {
				et = &td.Elems[i]
			}
			kids[i] = path{parent: p, name: td.Tag.String(), index: i}
			if d.Elems[i], err = r.untagged(&kids[i], et, depth+1); err != nil {
				return Data{}, err
			}
		}
		return d, nil
	}
	return r.content(p, td.Tag)
}

func (d *Data) appendCompact(b []byte, depth int) ([]byte, error) {
	if d.Type == nil {
		return nil, invalid("compact-array without a type description")
	}
	minSize, err := d.Type.minSize(0)
	if err != nil {
		return nil, err
	}
	if minSize == 0 {
		return nil, invalid("compact-array elements of type %s take no bytes", d.Type)
	}
	b = append(b, byte(TagCompactArray))
	b = d.Type.appendBinary(b)
	// Write the contents after room for the longest length form, then move
	// them into place.
	lenAt := len(b)
	b = append(b, 0, 0, 0)
	start := len(b)
	for i := range d.Elems {
		if b, err = d.Elems[i].appendUntagged(b, d.Type, depth+1); err != nil {
			return nil, err
		}
	}
	n := len(b) - start
	if n > maxLength {
		return nil, invalid("compact-array contents of %d bytes, at most %d", n, maxLength)
	}
	hdr := appendLength(make([]byte, 0, 3), n, d.Form)
	copy(b[lenAt:], hdr)
	if len(hdr) < 3 {
		copy(b[lenAt+len(hdr):], b[start:])
		b = b[:len(b)-(3-len(hdr))]
	}
	return b, nil
}

// appendUntagged appends d as a compact-array element of type td.
func (d *Data) appendUntagged(b []byte, td *TypeDesc, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, invalid("data nested deeper than %d", maxDepth)
	}
	if d.Tag != td.Tag {
		return nil, invalid("compact-array element is %s, the type description says %s", d.Tag, td.Tag)
	}
	switch td.Tag {
	case TagArray, TagStructure:
		n := len(td.Elems)
		if td.Tag == TagArray {
			n = int(td.Count)
		}
		if len(d.Elems) != n {
			return nil, invalid("compact-array element %s has %d elements, the type description says %d", td.Tag, len(d.Elems), n)
		}
		var err error
		for i := range d.Elems {
			et := &td.Elems[0]
			if td.Tag == TagStructure {
				et = &td.Elems[i]
			}
			if b, err = d.Elems[i].appendUntagged(b, et, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return d.appendContent(b)
}
