package boot

import (
	"bytes"
	"testing"
)

// TestWriteResetVector: the stub is at F000:FFF0, whole, inside the BIOS
// area the memory map reserves, and starts by writing 0xfe to port 0x64
// (the i8042 reset).
func TestWriteResetVector(t *testing.T) {
	mem := lowMem(2 << 20)
	if err := WriteResetVector(mem); err != nil {
		t.Fatalf("WriteResetVector = %v", err)
	}
	got, _ := mem.Slice(ResetVectorAddr, 16)
	if !bytes.HasPrefix(got, resetVectorCode) {
		t.Errorf("bytes at %#x = % x; want % x", ResetVectorAddr, got, resetVectorCode)
	}
	if want := []byte{0xB0, 0xFE, 0xE6, 0x64}; !bytes.HasPrefix(resetVectorCode, want) {
		t.Errorf("stub starts % x; want % x (mov al, 0xfe; out 0x64, al)", resetVectorCode[:4], want)
	}
	if end := ResetVectorAddr + len(resetVectorCode); end > HighMemAddr {
		t.Errorf("stub ends at %#x, past 1 MiB", end)
	}
	mm, err := MemoryMap(mem.ram)
	if err != nil {
		t.Fatal(err)
	}
	reserved := false
	for _, e := range mm {
		reserved = reserved || e.Type == E820Reserved && e.Addr <= ResetVectorAddr && e.Addr+e.Size >= ResetVectorAddr+16
	}
	if !reserved {
		t.Errorf("memory map %+v does not reserve the reset vector", mm)
	}
	if err := WriteResetVector(lowMem(0x80000)); err == nil {
		t.Errorf("WriteResetVector with 512 KiB of RAM = nil; want an error")
	}
}
