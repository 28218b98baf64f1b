package snapshot

import (
	"encoding/binary"
	"fmt"

	"vmm/kvm"
)

// The state section is encoding/binary (little-endian) of fixed-size
// structs, with a u32 count or length in front of each variable part.
// Why not JSON or gob: the KVM structures are fixed C layouts that
// binary encodes byte for byte with no schema to drift; the encoding is
// deterministic (the same State always gives the same bytes, so the
// checksum and the golden test pin the format); and every variable
// length is checked against the bytes that remain before anything is
// allocated, so a corrupt file can never make the decoder allocate more
// than the file holds.

// Limits on what a state section may declare; larger is corrupt.
const (
	MaxCPUs        = 256
	maxCPUIDs      = 256  // KVM allows 256 CPUID entries per vCPU
	maxMSRs        = 4096 // KVM_GET_MSR_INDEX_LIST holds under 100 today
	maxDevices     = 1024
	maxNameLen     = 256
	maxMachineLen  = 64 << 10
	maxDeviceState = 64 << 20
)

// Identity is what a restore must match: the command line's -m, -smp
// and the machine and device set as a canonical string the caller
// builds (devices, their ids and options, the CPU model).
type Identity struct {
	MemSize uint64
	CPUs    int
	Machine string
}

// State is everything a snapshot holds besides RAM.
type State struct {
	Identity
	VCPUs   []VCPU
	VM      VM
	Devices []Device
}

// VCPU is one vCPU's KVM state. CPUID is the table the VMM set (not
// KVM's runtime view), so a restore can check that this run builds the
// same one.
type VCPU struct {
	MPState   uint32
	TSCKHz    uint32 // 0: unknown
	HasXSave  bool   // XSave holds KVM_GET_XSAVE; else FPU is the FPU state
	Regs      kvm.Regs
	Sregs     kvm.Sregs
	FPU       kvm.FPU
	XSave     kvm.XSave
	XCRs      kvm.XCRs
	DebugRegs kvm.DebugRegs
	LAPIC     kvm.LAPICState
	Events    kvm.VCPUEvents
	CPUID     []kvm.CPUIDEntry
	MSRs      []kvm.MSREntry
}

// VM is the VM-wide KVM state: the in-kernel irqchip, PIT and kvmclock.
type VM struct {
	PICMaster kvm.IRQChip
	PICSlave  kvm.IRQChip
	IOAPIC    kvm.IRQChip
	PIT       kvm.PITState2
	Clock     kvm.ClockData
}

// Device is one device's state, encoded by the device itself.
type Device struct {
	Name string
	Data []byte
}

// vcpuFixed is the fixed-size part of VCPU as it is encoded; the 4 KiB
// XSave area follows it only when HasXSave is 1.
type vcpuFixed struct {
	MPState   uint32
	TSCKHz    uint32
	HasXSave  uint32
	_         uint32
	Regs      kvm.Regs
	Sregs     kvm.Sregs
	FPU       kvm.FPU
	XCRs      kvm.XCRs
	DebugRegs kvm.DebugRegs
	LAPIC     kvm.LAPICState
	Events    kvm.VCPUEvents
}

var (
	le            = binary.LittleEndian
	vcpuFixedSize = binary.Size(vcpuFixed{})
	cpuidSize     = binary.Size(kvm.CPUIDEntry{})
	msrSize       = binary.Size(kvm.MSREntry{})
)

// Encode returns the state section for s.
func (s *State) Encode() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var b []byte
	b = le.AppendUint64(b, s.MemSize)
	b = le.AppendUint32(b, uint32(s.CPUs))
	b = appendString(b, s.Machine)
	b = le.AppendUint32(b, uint32(len(s.VCPUs)))
	for i := range s.VCPUs {
		v := &s.VCPUs[i]
		f := vcpuFixed{MPState: v.MPState, TSCKHz: v.TSCKHz, Regs: v.Regs, Sregs: v.Sregs,
			FPU: v.FPU, XCRs: v.XCRs, DebugRegs: v.DebugRegs, LAPIC: v.LAPIC, Events: v.Events}
		if v.HasXSave {
			f.HasXSave = 1
		}
		b = mustAppend(b, &f)
		if v.HasXSave {
			b = mustAppend(b, &v.XSave)
		}
		b = le.AppendUint32(b, uint32(len(v.CPUID)))
		for j := range v.CPUID {
			b = mustAppend(b, &v.CPUID[j])
		}
		b = le.AppendUint32(b, uint32(len(v.MSRs)))
		for j := range v.MSRs {
			b = mustAppend(b, &v.MSRs[j])
		}
	}
	b = mustAppend(b, &s.VM)
	b = le.AppendUint32(b, uint32(len(s.Devices)))
	for _, d := range s.Devices {
		b = appendString(b, d.Name)
		b = le.AppendUint32(b, uint32(len(d.Data)))
		b = append(b, d.Data...)
	}
	return b, nil
}

// check refuses a State whose encoding the decoder would refuse.
func (s *State) check() error {
	switch {
	case s.CPUs < 1 || s.CPUs > MaxCPUs:
		return fmt.Errorf("state: %d vCPUs (1 to %d)", s.CPUs, MaxCPUs)
	case len(s.VCPUs) != s.CPUs:
		return fmt.Errorf("state: %d vCPU states for -smp %d", len(s.VCPUs), s.CPUs)
	case len(s.Machine) > maxMachineLen:
		return fmt.Errorf("state: machine description of %d bytes (at most %d)", len(s.Machine), maxMachineLen)
	case len(s.Devices) > maxDevices:
		return fmt.Errorf("state: %d devices (at most %d)", len(s.Devices), maxDevices)
	}
	for i, v := range s.VCPUs {
		if len(v.CPUID) > maxCPUIDs || len(v.MSRs) > maxMSRs {
			return fmt.Errorf("state: vCPU %d: %d CPUID entries, %d MSRs (at most %d, %d)", i, len(v.CPUID), len(v.MSRs), maxCPUIDs, maxMSRs)
		}
	}
	for _, d := range s.Devices {
		if len(d.Name) == 0 || len(d.Name) > maxNameLen || len(d.Data) > maxDeviceState {
			return fmt.Errorf("state: device %q: name of %d bytes, %d bytes of state", d.Name, len(d.Name), len(d.Data))
		}
	}
	return nil
}

// DecodeState parses a state section. Every length is checked against
// what remains of b first; trailing bytes are an error.
func DecodeState(b []byte) (*State, error) {
	d := decoder{b: b}
	s := &State{}
	s.MemSize = d.u64("memory size")
	cpus := d.u32("vCPU count")
	s.Machine = d.str("machine", maxMachineLen)
	n := d.count("vCPU states", MaxCPUs, vcpuFixedSize)
	if d.err == nil && (cpus < 1 || cpus > MaxCPUs || n != int(cpus)) {
		d.fail(fmt.Errorf("%d vCPU states for %d vCPUs", n, cpus))
	}
	s.CPUs = int(cpus)
	if d.err == nil {
		s.VCPUs = make([]VCPU, n)
	}
	for i := 0; d.err == nil && i < n; i++ {
		var f vcpuFixed
		d.fixed(fmt.Sprintf("vCPU %d", i), &f)
		if d.err == nil && f.HasXSave > 1 {
			d.fail(fmt.Errorf("vCPU %d: xsave flag %d", i, f.HasXSave))
		}
		v := &s.VCPUs[i]
		*v = VCPU{MPState: f.MPState, TSCKHz: f.TSCKHz, HasXSave: f.HasXSave == 1, Regs: f.Regs, Sregs: f.Sregs,
			FPU: f.FPU, XCRs: f.XCRs, DebugRegs: f.DebugRegs, LAPIC: f.LAPIC, Events: f.Events}
		if v.HasXSave {
			d.fixed(fmt.Sprintf("vCPU %d xsave", i), &v.XSave)
		}
		if c := d.count(fmt.Sprintf("vCPU %d CPUID", i), maxCPUIDs, cpuidSize); d.err == nil {
			v.CPUID = make([]kvm.CPUIDEntry, c)
			for j := range v.CPUID {
				d.fixed("CPUID entry", &v.CPUID[j])
			}
		}
		if c := d.count(fmt.Sprintf("vCPU %d MSRs", i), maxMSRs, msrSize); d.err == nil {
			v.MSRs = make([]kvm.MSREntry, c)
			for j := range v.MSRs {
				d.fixed("MSR", &v.MSRs[j])
			}
		}
	}
	d.fixed("VM state", &s.VM)
	nd := d.count("devices", maxDevices, 8)
	for i := 0; d.err == nil && i < nd; i++ {
		name := d.str(fmt.Sprintf("device %d name", i), maxNameLen)
		if d.err == nil && name == "" {
			d.fail(fmt.Errorf("device %d has no name", i))
		}
		data := d.bytes(fmt.Sprintf("device %s state", name), maxDeviceState)
		if d.err == nil {
			s.Devices = append(s.Devices, Device{Name: name, Data: data})
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d bytes after the last device", len(d.b)))
	}
	if d.err != nil {
		return nil, fmt.Errorf("state: %w", d.err)
	}
	return s, nil
}

func appendString(b []byte, s string) []byte {
	b = le.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// mustAppend encodes a fixed-size struct; binary only fails on types
// that are not fixed-size, which is a programming error caught by tests.
func mustAppend(b []byte, v any) []byte {
	b, err := binary.Append(b, le, v)
	if err != nil {
		panic(err)
	}
	return b
}

// decoder reads b front to back and keeps the first error; every read
// after an error is a no-op.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) take(what string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail(fmt.Errorf("%s: %d bytes needed, %d left (truncated or corrupt)", what, n, len(d.b)))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u32(what string) uint32 {
	if p := d.take(what, 4); p != nil {
		return le.Uint32(p)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if p := d.take(what, 8); p != nil {
		return le.Uint64(p)
	}
	return 0
}

// count reads a u32 count of elements at least elemSize bytes each,
// refusing one above max or one the remaining bytes cannot hold.
func (d *decoder) count(what string, max, elemSize int) int {
	n := d.u32(what)
	if d.err != nil {
		return 0
	}
	if n > uint32(max) || uint64(n)*uint64(elemSize) > uint64(len(d.b)) {
		d.fail(fmt.Errorf("%s: count %d (at most %d, and %d bytes left)", what, n, max, len(d.b)))
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(what string, max int) []byte {
	n := d.count(what, max, 1)
	if p := d.take(what, n); p != nil {
		return append([]byte(nil), p...)
	}
	return nil
}

func (d *decoder) str(what string, max int) string {
	n := d.count(what, max, 1)
	return string(d.take(what, n))
}

func (d *decoder) fixed(what string, v any) {
	p := d.take(what, binary.Size(v))
	if p == nil {
		return
	}
	if _, err := binary.Decode(p, le, v); err != nil {
		d.fail(fmt.Errorf("%s: %w", what, err))
	}
}
