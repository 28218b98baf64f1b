package acpi

// headerSize is the System Description Table header (ACPI 6.5 §5.2.6).
const headerSize = 36

// OEM identity in every table header.
const (
	oemID       = "GOVMM "
	oemRevision = 1
	creatorID   = "GOVM"
	creatorRev  = 1
)

// table returns a header for sig with the body appended and the length
// and checksum filled in.
func table(sig string, revision byte, oemTableID string, body []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(body))
	copy(b[0:4], sig)
	b[8] = revision
	copy(b[10:16], oemID)
	copy(b[16:24], pad(oemTableID, 8))
	le.PutUint32(b[24:], oemRevision)
	copy(b[28:32], creatorID)
	le.PutUint32(b[32:], creatorRev)
	b = append(b, body...)
	le.PutUint32(b[4:], uint32(len(b)))
	b[9] = checksum(b)
	return b
}

// pad extends s with spaces to n bytes.
func pad(s string, n int) []byte {
	b := []byte(s)
	for len(b) < n {
		b = append(b, ' ')
	}
	return b[:n]
}

// checksum is the byte that makes b sum to zero (b's checksum byte
// must be zero when it is computed).
func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}

// Sum returns the byte sum of b: zero for a table with a valid checksum.
func Sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// GAS is a Generic Address Structure (ACPI 6.5 §5.2.3.2).
type GAS struct {
	Space   byte // SpaceSystemMemory or SpaceSystemIO
	Width   byte // register bit width
	Access  byte // 1 byte, 2 word, 3 dword, 4 qword
	Address uint64
}

// Address spaces for GAS.
const (
	SpaceSystemMemory = 0
	SpaceSystemIO     = 1
)

func (g GAS) bytes() []byte {
	b := []byte{g.Space, g.Width, 0, g.Access}
	return le.AppendUint64(b, g.Address)
}
