// Package acpi builds the ACPI tables a hardware-reduced x86 guest needs
// (RSDP, RSDT/XSDT, FADT, MADT, MCFG, DSDT) in Go and writes them into
// guest memory. The DSDT's AML comes from a small encoder whose output
// is checked byte for byte against iasl.
package acpi

import (
	"fmt"
	"strings"
)

// AML opcodes and prefixes (ACPI 6.5 §20.3).
const (
	opZero        = 0x00
	opOne         = 0x01
	opName        = 0x08
	prefixByte    = 0x0a
	prefixWord    = 0x0b
	prefixDWord   = 0x0c
	prefixString  = 0x0d
	prefixQWord   = 0x0e
	opScope       = 0x10
	opBuffer      = 0x11
	opPackage     = 0x12
	opMethod      = 0x14
	prefixDual    = 0x2e
	prefixMulti   = 0x2f
	prefixExt     = 0x5b
	opDevice      = 0x82 // after prefixExt
	charRoot      = '\\'
	charParent    = '^'
	opReturn      = 0xa4
	endTag        = 0x79
	maxPkgLength  = 1<<28 - 1
	nameSegLength = 4
)

// AML is an encoded AML term (object, statement or definition).
type AML []byte

// cat joins terms.
func cat(terms []AML) []byte {
	var b []byte
	for _, t := range terms {
		b = append(b, t...)
	}
	return b
}

// pkgLength encodes the PkgLength of a package whose contents (after the
// PkgLength) are n bytes: the encoded length counts itself.
func pkgLength(n int) []byte {
	for size := 1; size <= 4; size++ {
		total := n + size
		if size == 1 && total <= 0x3f {
			return []byte{byte(total)}
		}
		if size > 1 && total < 1<<(4+8*(size-1)) {
			b := []byte{byte(size-1)<<6 | byte(total&0xf)}
			for i := 1; i < size; i++ {
				b = append(b, byte(total>>(4+8*(i-1))))
			}
			return b
		}
	}
	panic(fmt.Sprintf("acpi: AML package of %d bytes is too long", n))
}

// pkg is op, a PkgLength and the contents.
func pkg(op []byte, contents []byte) AML {
	b := append([]byte{}, op...)
	b = append(b, pkgLength(len(contents))...)
	return append(b, contents...)
}

// nameSeg pads a name segment to four characters with '_'.
func nameSeg(s string) ([]byte, error) {
	if len(s) == 0 || len(s) > nameSegLength {
		return nil, fmt.Errorf("acpi: name segment %q: want 1-4 characters", s)
	}
	for i, c := range s {
		ok := c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return nil, fmt.Errorf("acpi: name segment %q: bad character %q", s, c)
		}
	}
	return []byte(s + strings.Repeat("_", nameSegLength-len(s))), nil
}

// NameString encodes an ASL name path such as "_SB", "\_SB.PCI0" or
// "^FOO": root or parent prefixes, then one segment, a dual or a multi
// name path.
func NameString(path string) (AML, error) {
	var b AML
	rest := path
	if strings.HasPrefix(rest, string(charRoot)) {
		b, rest = append(b, charRoot), rest[1:]
	}
	for strings.HasPrefix(rest, string(charParent)) {
		b, rest = append(b, charParent), rest[1:]
	}
	if rest == "" {
		return append(b, 0), nil // NullName
	}
	segs := strings.Split(rest, ".")
	switch {
	case len(segs) == 2:
		b = append(b, prefixDual)
	case len(segs) > 2:
		if len(segs) > 255 {
			return nil, fmt.Errorf("acpi: name %q has too many segments", path)
		}
		b = append(b, prefixMulti, byte(len(segs)))
	}
	for _, s := range segs {
		seg, err := nameSeg(s)
		if err != nil {
			return nil, fmt.Errorf("acpi: name %q: %w", path, err)
		}
		b = append(b, seg...)
	}
	return b, nil
}

// mustName is NameString for the names this package writes itself.
func mustName(path string) AML {
	b, err := NameString(path)
	if err != nil {
		panic(err)
	}
	return b
}

// Integer encodes v with the shortest constant: ZeroOp, OneOp or a
// Byte/Word/DWord/QWord prefix.
func Integer(v uint64) AML {
	switch {
	case v == 0:
		return AML{opZero}
	case v == 1:
		return AML{opOne}
	case v <= 0xff:
		return AML{prefixByte, byte(v)}
	case v <= 0xffff:
		return AML{prefixWord, byte(v), byte(v >> 8)}
	case v <= 0xffffffff:
		return AML{prefixDWord, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	}
	b := AML{prefixQWord}
	for i := range 8 {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// String encodes an ASCII string constant.
func String(s string) AML {
	b := AML{prefixString}
	b = append(b, s...)
	return append(b, 0)
}

// EISAID compresses a PNP id like "PNP0A08" into the 32-bit integer
// ASL's EisaId() makes: three 5-bit letters and four hex digits,
// big-endian in memory.
func EISAID(id string) (AML, error) {
	if len(id) != 7 {
		return nil, fmt.Errorf("acpi: EISA id %q: want 7 characters", id)
	}
	var v uint32
	for i := range 3 {
		c := id[i]
		if c < 'A' || c > 'Z' {
			return nil, fmt.Errorf("acpi: EISA id %q: bad letter %q", id, c)
		}
		v = v<<5 | uint32(c-'@')
	}
	for i := 3; i < 7; i++ {
		var d byte
		switch c := id[i]; {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return nil, fmt.Errorf("acpi: EISA id %q: bad hex digit %q", id, c)
		}
		v = v<<4 | uint32(d)
	}
	// The 32-bit value is stored big-endian, so the integer is byte-swapped.
	return Integer(uint64(v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24)), nil
}

// Name is Name (path, object).
func Name(path string, obj AML) AML {
	return append(append(AML{opName}, mustName(path)...), obj...)
}

// Scope is Scope (path) { terms }.
func Scope(path string, terms ...AML) AML {
	return pkg([]byte{opScope}, append(mustName(path), cat(terms)...))
}

// Device is Device (name) { terms }.
func Device(name string, terms ...AML) AML {
	return pkg([]byte{prefixExt, opDevice}, append(mustName(name), cat(terms)...))
}

// Method is Method (name, args, NotSerialized or Serialized) { terms }.
func Method(name string, args int, serialized bool, terms ...AML) AML {
	flags := byte(args & 7)
	if serialized {
		flags |= 8
	}
	return pkg([]byte{opMethod}, append(append(mustName(name), flags), cat(terms)...))
}

// Return is Return (value).
func Return(v AML) AML { return append(AML{opReturn}, v...) }

// Package is Package () { elements } (at most 255 elements).
func Package(elems ...AML) AML {
	if len(elems) > 255 {
		panic("acpi: AML package of more than 255 elements")
	}
	return pkg([]byte{opPackage}, append([]byte{byte(len(elems))}, cat(elems)...))
}

// Buffer is Buffer () { data }.
func Buffer(data []byte) AML {
	return pkg([]byte{opBuffer}, append(Integer(uint64(len(data))), data...))
}
