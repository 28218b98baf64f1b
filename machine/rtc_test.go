package machine

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"vmm/boot/acpi"
	"vmm/kvm"
)

// TestMachineRTCAndFADT: a stock kernel finds a CMOS RTC at ports
// 0x70-0x71 keeping the host's time, and an FADT that says there is no
// 8042 and no VGA but a CMOS RTC (century byte 0x32), with the RTC
// described in the DSDT.
func TestMachineRTCAndFADT(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	m, err := New(Config{MemSize: 64 << 20, CPUs: 1, Kernel: testGuest(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	cmos := func(idx byte) byte {
		m.pio.Write(0x70, []byte{idx})
		b := []byte{0}
		m.pio.Read(0x71, b)
		return b[0]
	}
	if d := cmos(0x0d); d != 0x80 {
		t.Errorf("RTC register D = %#02x; want 0x80 (valid RAM and time)", d)
	}
	bcd := func(v int) byte { return byte(v/10<<4 | v%10) }
	before := time.Now().UTC().Year()
	year, century := cmos(0x09), cmos(0x32)
	after := time.Now().UTC().Year()
	if (year != bcd(before%100) || century != bcd(before/100)) && (year != bcd(after%100) || century != bcd(after/100)) {
		t.Errorf("RTC century, year = %#02x, %#02x; want the host's year %d in BCD", century, year, before)
	}

	le := binary.LittleEndian
	read := func(addr, n uint64) []byte {
		b, err := m.mem.Slice(addr, n)
		if err != nil {
			t.Fatalf("guest memory [%#x, +%#x): %v", addr, n, err)
		}
		return b
	}
	rsdp := read(le.Uint64(read(0x6000+32, 8)), 36) // start_info.rsdp_paddr
	xsdt := le.Uint64(rsdp[24:])
	xsdtLen := uint64(le.Uint32(read(xsdt+4, 4)))
	var fadt []byte
	for off := uint64(36); off+8 <= xsdtLen; off += 8 {
		a := le.Uint64(read(xsdt+off, 8))
		if string(read(a, 4)) == "FACP" {
			fadt = read(a, uint64(le.Uint32(read(a+4, 4))))
		}
	}
	if fadt == nil {
		t.Fatal("no FADT in the XSDT")
	}
	if flags := le.Uint16(fadt[109:]); flags != acpi.BootNoVGA {
		t.Errorf("FADT IAPC_BOOT_ARCH = %#04x; want %#04x (no 8042, no VGA, CMOS RTC present)", flags, acpi.BootNoVGA)
	}
	if fadt[108] != 0x32 {
		t.Errorf("FADT CENTURY = %#02x; want 0x32", fadt[108])
	}
	dsdt := le.Uint64(fadt[140:])
	d := read(dsdt, uint64(le.Uint32(read(dsdt+4, 4))))
	id, _ := acpi.EISAID("PNP0B00")
	if !bytes.Contains(d, id) {
		t.Errorf("DSDT has no PNP0B00 (CMOS RTC) device")
	}
}
