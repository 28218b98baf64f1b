package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"vmm/kvm"
)

// testState is a State with every field set to something recognisable.
func testState(cpus int, mem uint64) *State {
	s := &State{Identity: Identity{MemSize: mem, CPUs: cpus, Machine: "pc,acpi=on;virtio-serial-pci,id=vs0;virtconsole,chardev=c0"}}
	for i := range cpus {
		v := VCPU{MPState: kvm.MPStateHalted, TSCKHz: 2_000_000 + uint32(i), HasXSave: i%2 == 0}
		v.Regs.RIP, v.Regs.RAX = 0x100000+uint64(i), 42
		v.Sregs.CR3, v.Sregs.EFER = 0x9000, 0x500
		v.FPU.FCW, v.FPU.MXCSR = 0x37f, 0x1f80
		if v.HasXSave {
			v.XSave.Region[7] = 0x1f80
		}
		v.XCRs.NrXCRs, v.XCRs.XCRs[0].Value = 1, 7
		v.DebugRegs.DR7 = 0x400
		v.LAPIC.Regs[0x20] = byte(i) // APIC id
		v.Events.NMIMasked = 1
		v.CPUID = []kvm.CPUIDEntry{{Function: 1, EAX: 0x806f8, EBX: uint32(i) << 24}, {Function: 0xd, Index: 1, Flags: 1}}
		v.MSRs = []kvm.MSREntry{{Index: 0x10, Data: 1 << 40}, {Index: 0x4b564d01, Data: 0x7000 | 1}}
		s.VCPUs = append(s.VCPUs, v)
	}
	s.VM.PICMaster.Chip[2] = 0xfb
	s.VM.PICSlave.ChipID = kvm.IRQChipPICSlave
	s.VM.IOAPIC.ChipID = kvm.IRQChipIOAPIC
	s.VM.PIT.Channels[0].Count = 1193
	s.VM.Clock.Clock = 123456789
	s.Devices = []Device{{Name: "com1", Data: []byte{1, 2, 3}}, {Name: "i8042"}}
	return s
}

// testRAM is two regions of guest RAM with data in some pages and long
// zero runs in between (which the writer leaves as holes).
func testRAM(low, high int) [][]byte {
	ram := [][]byte{make([]byte, low), make([]byte, high)}
	for i, r := range ram {
		for off := 0; off < len(r); off += 256 << 10 {
			copy(r[off:], fmt.Sprintf("region %d offset %#x", i, off))
		}
		r[len(r)-1] = 0xaa
	}
	return ram
}

func writeTest(t *testing.T, st *State, ram [][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vm.snap")
	if err := Write(path, "v1.2.3-test", st, ram); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return path
}

func TestRoundTrip(t *testing.T) {
	st := testState(2, 3<<20)
	ram := testRAM(2<<20, 1<<20)
	path := writeTest(t, st, ram)

	f, err := Open(path, st.Identity)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.State, st) {
		t.Errorf("Open(%s).State = %+v;\nwant %+v", path, f.State, st)
	}
	if v := f.VMMVersion(); v != "v1.2.3-test" {
		t.Errorf("VMMVersion() = %q; want v1.2.3-test", v)
	}
	var off uint64
	for i, want := range ram {
		got, err := f.MapRAM(off, uint64(len(want)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("RAM region %d differs from what was saved", i)
		}
		// MAP_PRIVATE: the guest's writes stay out of the file.
		got[0] ^= 0xff
		disk := make([]byte, 1)
		if _, err := f.f.ReadAt(disk, int64(f.hdr.RAMOffset+off)); err != nil || disk[0] != want[0] {
			t.Errorf("file byte after a write to the mapping = %#x, %v; want %#x (unchanged)", disk[0], err, want[0])
		}
		off += uint64(len(want))
	}
	if f.hdr.RAMOffset%PageSize != 0 {
		t.Errorf("RAM offset %d is not page-aligned", f.hdr.RAMOffset)
	}
	for _, bad := range [][2]uint64{{1, PageSize}, {0, 0}, {0, 4 << 20}, {3 << 20, PageSize}} {
		if _, err := f.MapRAM(bad[0], bad[1]); err == nil {
			t.Errorf("MapRAM(%#x, %#x) = nil error; want a refusal", bad[0], bad[1])
		}
	}
}

// TestWriteLeavesNothingOnFailure: a save that fails leaves no file.
func TestWriteLeavesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	st := testState(1, 2<<20)
	if err := Write(filepath.Join(dir, "x"), "v", st, [][]byte{make([]byte, 1<<20)}); err == nil {
		t.Fatal("Write with RAM smaller than -m = nil; want an error")
	}
	st.VCPUs = nil
	if err := Write(filepath.Join(dir, "y"), "v", st, testRAM(1<<20, 1<<20)); err == nil {
		t.Fatal("Write with no vCPU states = nil; want an error")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left after failed writes: %v", ents)
	}
}

// TestRefusals: every way a file can be wrong is one line naming it.
func TestRefusals(t *testing.T) {
	st := testState(2, 2<<20)
	good, err := os.ReadFile(writeTest(t, st, testRAM(1<<20, 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	var h header
	binary.Decode(good, le, &h)
	stateOff := headerSize + 40 // inside the machine string
	with := func(edit func(b []byte) []byte) []byte { return edit(bytes.Clone(good)) }
	tests := []struct {
		name string
		file []byte
		want Identity
		msg  string
	}{
		{"empty", nil, st.Identity, "truncated: 0 bytes, shorter than the 128-byte header"},
		{"not a snapshot", []byte("\x7fELF\x02\x01\x01\x00 an ELF file, not a snapshot at all................................................................................................"), st.Identity, `not a vmm snapshot (no "vmmsnap" at its start)`},
		{"short garbage", []byte("hello world"), st.Identity, `not a vmm snapshot`},
		{"header only", good[:100], st.Identity, "truncated: 100 bytes, shorter than the 128-byte header"},
		{"other format", with(func(b []byte) []byte { b[8] = 9; return b }), st.Identity,
			"format version 9 (written by vmm v1.2.3-test); this vmm reads version 1"},
		{"cut in the state", good[:headerSize+100], st.Identity, fmt.Sprintf("truncated: %d bytes, the header says %d", headerSize+100, len(good))},
		{"cut in RAM", good[:len(good)-PageSize], st.Identity, fmt.Sprintf("truncated: %d bytes, the header says %d", len(good)-PageSize, len(good))},
		{"appended", append(bytes.Clone(good), 0), st.Identity, fmt.Sprintf("%d bytes, the header says %d (appended to?)", len(good)+1, len(good))},
		{"state size", with(func(b []byte) []byte { le.PutUint64(b[16:], 1<<40); return b }), st.Identity, "corrupt header"},
		{"RAM offset", with(func(b []byte) []byte { le.PutUint64(b[24:], h.RAMOffset+1); return b }), st.Identity, "corrupt header"},
		{"flipped state byte", with(func(b []byte) []byte { b[stateOff] ^= 1; return b }), st.Identity, "checksum mismatch: the header or state is corrupt"},
		{"flipped version byte", with(func(b []byte) []byte { b[48] ^= 1; return b }), st.Identity, "checksum mismatch"},
		{"flipped checksum", with(func(b []byte) []byte { b[headerSize+int(h.StateSize)] ^= 1; return b }), st.Identity, "checksum mismatch"},
		{"other -m", good, Identity{MemSize: 512 << 20, CPUs: 2, Machine: st.Machine}, "saved with -m 2M, this run has -m 512M"},
		{"other -smp", good, Identity{MemSize: 2 << 20, CPUs: 4, Machine: st.Machine}, "saved with -smp 2, this run has -smp 4"},
		{"other machine", good, Identity{MemSize: 2 << 20, CPUs: 2, Machine: strings.Replace(st.Machine, "vs0", "vs1", 1)}, `saved with machine "…tio-serial-pci,id=vs0;virtconsole,chardev=c0", this run has "…tio-serial-pci,id=vs1;virtconsole,chardev=c0"`},
		{"state that does not decode", resum(with(func(b []byte) []byte { le.PutUint32(b[headerSize+8:], 0); return b })), st.Identity, "state: 2 vCPU states for 0 vCPUs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.snap")
			if err := os.WriteFile(path, tt.file, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path, tt.want)
			if err == nil {
				f.Close()
				t.Fatalf("Open = nil error; want %q", tt.msg)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "snapshot "+path+": ") || !strings.Contains(msg, tt.msg) || strings.Contains(msg, "\n") {
				t.Errorf("Open error = %q; want one line \"snapshot %s: …%s…\"", msg, path, tt.msg)
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "absent"), st.Identity); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Open(absent) = %v; want no such file", err)
	}
	if _, err := Open(t.TempDir(), st.Identity); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open(directory) = %v; want not a regular file", err)
	}
}

// resum recomputes the checksum of a file whose header or state a test
// edited, so the edit reaches the state decoder.
func resum(b []byte) []byte {
	var h header
	binary.Decode(b, le, &h)
	end := headerSize + int(h.StateSize)
	sum := sha256.Sum256(b[:end])
	copy(b[end:], sum[:])
	return b
}

// TestStateGolden pins the encoding: if this fails, the state layout
// changed, so FormatVersion must change too (then update the digest).
func TestStateGolden(t *testing.T) {
	b, err := testState(2, 2<<20).Encode()
	if err != nil {
		t.Fatal(err)
	}
	const wantLen, wantSum = 11158, "041b9fdd2fe5398f1d5d70bdebafc62eb36b099b7dcce12da950e3da25a37bae"
	if got := fmt.Sprintf("%x", sha256.Sum256(b)); len(b) != wantLen || got != wantSum {
		t.Errorf("state encoding: %d bytes, sha256 %s; want %d bytes, %s (format version %d)", len(b), got, wantLen, wantSum, FormatVersion)
	}
}

// TestDecodeStateBounds: counts that the bytes cannot hold are refused
// before anything is allocated for them.
func TestDecodeStateBounds(t *testing.T) {
	good, err := testState(1, 2<<20).Encode()
	if err != nil {
		t.Fatal(err)
	}
	machineLen := len(testState(1, 0).Machine)
	vcpusAt := 12 + 4 + machineLen
	tests := []struct {
		name string
		edit func(b []byte)
		msg  string
	}{
		{"huge machine string", func(b []byte) { le.PutUint32(b[12:], 0xffffffff) }, "machine: count 4294967295"},
		{"huge vCPU count", func(b []byte) { le.PutUint32(b[vcpusAt:], 0xffffffff) }, "vCPU states: count 4294967295"},
		{"vCPU count beyond the bytes", func(b []byte) { le.PutUint32(b[8:], 200); le.PutUint32(b[vcpusAt:], 200) }, "vCPU states: count 200"},
		// vCPU 0's CPUID count follows its XSAVE area.
		{"huge CPUID count", func(b []byte) { le.PutUint32(b[vcpusAt+4+vcpuFixedSize+4096:], 1<<30) }, "vCPU 0 CPUID: count"},
		{"xsave flag", func(b []byte) { le.PutUint32(b[vcpusAt+4+8:], 2) }, "vCPU 0: xsave flag 2"},
		{"no vCPUs", func(b []byte) { le.PutUint32(b[8:], 0); le.PutUint32(b[vcpusAt:], 0) }, "0 vCPU states for 0 vCPUs"},
	}
	for _, tt := range tests {
		b := bytes.Clone(good)
		tt.edit(b)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := DecodeState(b)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: DecodeState = %v; want an error containing %q", tt.name, err, tt.msg)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: DecodeState allocated %d bytes for a %d-byte input", tt.name, n, len(b))
		}
	}
	if _, err := DecodeState(append(bytes.Clone(good), 0)); err == nil || !strings.Contains(err.Error(), "1 bytes after the last device") {
		t.Errorf("DecodeState with a trailing byte = %v; want refused", err)
	}
	for n := range len(good) {
		if _, err := DecodeState(good[:n]); err == nil {
			t.Fatalf("DecodeState(first %d of %d bytes) = nil error; want truncated", n, len(good))
		}
	}
}

// FuzzDecodeState: any input is refused or decoded, never a panic, and
// what decodes encodes back to something that decodes the same.
func FuzzDecodeState(f *testing.F) {
	// Seeds: a whole one-vCPU state, and its first bytes (identity and
	// counts), which mutate quickly into the decoder's refusals. The
	// committed corpus (testdata/fuzz/FuzzDecodeState) adds two vCPUs
	// with XSAVE and a few refusals.
	s := testState(1, 2<<20)
	s.VCPUs[0].HasXSave = false
	b, err := s.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			return
		}
		again, err := s.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded state: %v", err)
		}
		s2, err := DecodeState(again)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("decode(encode(decode(b))) = %v; want the first decode", err)
		}
	})
}

// TestWriteSparse: pages marked untouched are holes without being read,
// and the file is the one Write makes from the same (zero) pages.
func TestWriteSparse(t *testing.T) {
	st := testState(1, 1<<20)
	ram := make([]byte, st.MemSize)
	ram[5*PageSize+7] = 0xaa
	untouched := make([]bool, len(ram)/PageSize)
	for p := range untouched {
		untouched[p] = p != 5
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := Write(a, "test", st, [][]byte{ram}); err != nil {
		t.Fatal(err)
	}
	if err := WriteSparse(b, "test", st, [][]byte{ram}, [][]bool{untouched}); err != nil {
		t.Fatal(err)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Errorf("WriteSparse's file differs from Write's (%d and %d bytes)", len(db), len(da))
	}
}
