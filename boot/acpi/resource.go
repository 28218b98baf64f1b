package acpi

import "encoding/binary"

// Resource descriptors (ACPI 6.5 §6.4) for ResourceTemplate ().
var le = binary.LittleEndian

// ResourceTemplate is a Buffer of descriptors closed by an end tag with
// a zero checksum (which means "ignore"), as iasl writes it.
func ResourceTemplate(descs ...[]byte) AML {
	var b []byte
	for _, d := range descs {
		b = append(b, d...)
	}
	return Buffer(append(b, endTag, 0))
}

// Memory32Fixed is Memory32Fixed (ReadWrite or ReadOnly, base, length).
func Memory32Fixed(writable bool, base, length uint32) []byte {
	b := []byte{0x86, 9, 0, 0}
	if writable {
		b[3] = 1
	}
	b = le.AppendUint32(b, base)
	return le.AppendUint32(b, length)
}

// Interrupt trigger and polarity for ExtendedInterrupt.
const (
	Level      = false
	Edge       = true
	ActiveHigh = false
	ActiveLow  = true
)

// Interrupt is Interrupt (ResourceConsumer, trigger, polarity,
// Exclusive or Shared) { gsis }.
func Interrupt(edge, activeLow, shared bool, gsis ...uint32) []byte {
	flags := byte(1) // consumer
	if edge {
		flags |= 2
	}
	if activeLow {
		flags |= 4
	}
	if shared {
		flags |= 8
	}
	b := []byte{0x89}
	b = le.AppendUint16(b, uint16(2+4*len(gsis)))
	b = append(b, flags, byte(len(gsis)))
	for _, g := range gsis {
		b = le.AppendUint32(b, g)
	}
	return b
}

// IO is IO (Decode16, min, max, alignment, length).
func IO(min, max uint16, align, length byte) []byte {
	b := []byte{0x47, 1}
	b = le.AppendUint16(b, min)
	b = le.AppendUint16(b, max)
	return append(b, align, length)
}

// Address space resource types and flags.
const (
	spaceMemory = 0
	spaceIO     = 1
	spaceBus    = 2
	// ResourceProducer, PosDecode, MinFixed, MaxFixed.
	producerFixed = 0x0c
	ioEntireRange = 3
	memReadWrite  = 1
)

// wordSpace is a Word Address Space descriptor with the length computed
// from min and max.
func wordSpace(typ, specific byte, min, max uint16) []byte {
	b := []byte{0x88, 0x0d, 0, typ, producerFixed, specific}
	for _, v := range []uint16{0, min, max, 0, max - min + 1} {
		b = le.AppendUint16(b, v)
	}
	return b
}

// WordBusNumber is WordBusNumber (ResourceProducer, MinFixed, MaxFixed,
// PosDecode, 0, min, max, 0, max-min+1).
func WordBusNumber(min, max uint16) []byte { return wordSpace(spaceBus, 0, min, max) }

// WordIO is WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode,
// EntireRange, 0, min, max, 0, max-min+1).
func WordIO(min, max uint16) []byte { return wordSpace(spaceIO, ioEntireRange, min, max) }

// DWordMemory is DWordMemory (ResourceProducer, PosDecode, MinFixed,
// MaxFixed, NonCacheable, ReadWrite, 0, min, max, 0, max-min+1).
func DWordMemory(min, max uint32) []byte {
	b := []byte{0x87, 0x17, 0, spaceMemory, producerFixed, memReadWrite}
	for _, v := range []uint32{0, min, max, 0, max - min + 1} {
		b = le.AppendUint32(b, v)
	}
	return b
}

// QWordMemory is QWordMemory (ResourceProducer, PosDecode, MinFixed,
// MaxFixed, NonCacheable, ReadWrite, 0, min, max, 0, max-min+1).
func QWordMemory(min, max uint64) []byte {
	b := []byte{0x8a, 0x2b, 0, spaceMemory, producerFixed, memReadWrite}
	for _, v := range []uint64{0, min, max, 0, max - min + 1} {
		b = le.AppendUint64(b, v)
	}
	return b
}
