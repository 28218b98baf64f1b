package acpi

// AML for methods that do something (ACPI 6.5 §20.2.5): operation
// regions and their fields, locals and arguments, Store, And, LEqual,
// If and Notify. What the Generic Event Device's _EVT needs.

// Opcodes (ACPI 6.5 §20.3).
const (
	opOpRegion = 0x80 // after prefixExt
	opField    = 0x81 // after prefixExt
	opLocal0   = 0x60
	opArg0     = 0x68
	opStore    = 0x70
	opAnd      = 0x7b
	opNotify   = 0x86
	opLEqual   = 0x93
	opIf       = 0xa0
)

// Operation region spaces (RegionSpace).
const (
	SystemMemory = 0
	SystemIO     = 1
)

// Field flags: access type (bits 0-3), lock rule (bit 4), update rule
// (bits 5-6).
const (
	AnyAcc       = 0
	ByteAcc      = 1
	WordAcc      = 2
	DWordAcc     = 3
	NoLock       = 0
	Lock         = 1 << 4
	Preserve     = 0
	WriteAsOnes  = 1 << 5
	WriteAsZeros = 2 << 5
)

// Local is LocalN (0-7), Arg ArgN (0-6).
func Local(n int) AML { return AML{opLocal0 + byte(n&7)} }
func Arg(n int) AML   { return AML{opArg0 + byte(n%7)} }

// Ref is a reference to a named object, e.g. a field or a device, as an
// operand or a target.
func Ref(path string) AML { return mustName(path) }

// OperationRegion is OperationRegion (name, space, offset, length).
func OperationRegion(name string, space byte, offset, length uint64) AML {
	b := append(AML{prefixExt, opOpRegion}, mustName(name)...)
	b = append(b, space)
	b = append(b, Integer(offset)...)
	return append(b, Integer(length)...)
}

// FieldUnit is one named field of Bits bits; an empty Name is an
// unnamed gap (Offset or ", N" in ASL).
type FieldUnit struct {
	Name string
	Bits int
}

// Field is Field (region, flags) { units }.
func Field(region string, flags byte, units ...FieldUnit) AML {
	b := append(mustName(region), flags)
	for _, u := range units {
		if u.Name == "" {
			b = append(b, 0)
		} else {
			seg, err := nameSeg(u.Name)
			if err != nil {
				panic(err)
			}
			b = append(b, seg...)
		}
		b = append(b, fieldLength(u.Bits)...)
	}
	return pkg([]byte{prefixExt, opField}, b)
}

// fieldLength encodes a field's bit count as a PkgLength does its
// length, except that the count does not include the encoding itself.
func fieldLength(n int) []byte {
	switch {
	case n < 0 || n > maxPkgLength:
		panic("acpi: bad field length")
	case n <= 0x3f:
		return []byte{byte(n)}
	}
	size := 2
	for n >= 1<<(4+8*(size-1)) {
		size++
	}
	b := []byte{byte(size-1)<<6 | byte(n&0xf)}
	for i := 1; i < size; i++ {
		b = append(b, byte(n>>(4+8*(i-1))))
	}
	return b
}

// Store is Store (src, dst), ASL's dst = src.
func Store(src, dst AML) AML { return append(append(AML{opStore}, src...), dst...) }

// And is And (a, b, target); a nil target is none (ASL's a & b).
func And(a, b, target AML) AML {
	if target == nil {
		target = AML{0} // NullName
	}
	return append(append(append(AML{opAnd}, a...), b...), target...)
}

// LEqual is LEqual (a, b), ASL's a == b.
func LEqual(a, b AML) AML { return append(append(AML{opLEqual}, a...), b...) }

// If is If (predicate) { terms }.
func If(pred AML, terms ...AML) AML {
	return pkg([]byte{opIf}, append(append([]byte{}, pred...), cat(terms)...))
}

// Notify is Notify (object, value).
func Notify(obj, value AML) AML { return append(append(AML{opNotify}, obj...), value...) }
