package soak

import "encoding/binary"

// The stream every port carries each way: byte k is byte k%8 of
// splitmix64(k/8), the same stream the test guest writes and checks
// (tests/guest/vs.c), so either side can check any offset on its own.

func splitmix64(x uint64) uint64 {
	z := x + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// PatternByte is the stream byte at offset k.
func PatternByte(k int64) byte {
	return byte(splitmix64(uint64(k)/8) >> (8 * (uint64(k) % 8)))
}

// Fill writes the stream bytes [off, off+len(b)) into b.
func Fill(b []byte, off int64) {
	i := 0
	for ; i < len(b) && (off+int64(i))%8 != 0; i++ {
		b[i] = PatternByte(off + int64(i))
	}
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], splitmix64(uint64(off+int64(i))/8))
	}
	for ; i < len(b); i++ {
		b[i] = PatternByte(off + int64(i))
	}
}

// Pattern returns the stream bytes [off, off+n).
func Pattern(off, n int64) []byte {
	b := make([]byte, n)
	Fill(b, off)
	return b
}

// Check returns the index of the first byte of b that is not the stream
// at offset off, or -1.
func Check(b []byte, off int64) int {
	i := 0
	for ; i < len(b) && (off+int64(i))%8 != 0; i++ {
		if b[i] != PatternByte(off+int64(i)) {
			return i
		}
	}
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) != splitmix64(uint64(off+int64(i))/8) {
			break
		}
	}
	for ; i < len(b); i++ {
		if b[i] != PatternByte(off+int64(i)) {
			return i
		}
	}
	return -1
}
