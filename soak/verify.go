package soak

import "fmt"

// Verifier checks one stream at exact offsets. Offset is where the next
// byte must come from; it advances past bytes received and past bytes a
// departing peer chose not to read (Skip), never otherwise, so a lost,
// repeated or reordered byte shows up as a mismatch at a named offset.
type Verifier struct {
	Offset int64
	// Bad is the first mismatch; later bytes are counted, not checked,
	// since a stream that slipped once would report every byte after it.
	Bad *Mismatch
}

// Mismatch is one wrong byte at a stream offset.
type Mismatch struct {
	Offset    int64
	Got, Want byte
}

func (m *Mismatch) Error() string {
	return fmt.Sprintf("offset %d: got %#02x want %#02x", m.Offset, m.Got, m.Want)
}

// Feed checks b as the next bytes of the stream and returns the first
// mismatch it found in b, if any.
func (v *Verifier) Feed(b []byte) *Mismatch {
	var m *Mismatch
	if v.Bad == nil {
		if i := Check(b, v.Offset); i >= 0 {
			off := v.Offset + int64(i)
			m = &Mismatch{Offset: off, Got: b[i], Want: PatternByte(off)}
			v.Bad = m
		}
	}
	v.Offset += int64(len(b))
	return m
}

// Skip moves past n bytes the departing peer received but never read:
// they were its own to lose, and the next peer resumes after them.
func (v *Verifier) Skip(n int64) { v.Offset += n }
