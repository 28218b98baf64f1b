package boot

import (
	"encoding/binary"
	"testing"

	"vmm/kvm"
	"vmm/kvm/kvmtest"
)

// TestKVMEntry runs a few guest instructions from each entry state under
// real KVM: the vCPU must accept the state (no FAIL_ENTRY), reach the
// entry point with the right register, read boot structures through the
// page tables (long mode), and reload DS from the boot GDT.

const kvmTestMem = 64 << 20

// Guest code: report the pointer register and what it points at on port
// 0x500, reload DS with __BOOT_DS, report again, halt.
var (
	pvhCode = []byte{
		0xBA, 0x00, 0x05, 0x00, 0x00, // mov edx, 0x500
		0x89, 0xD8, // mov eax, ebx
		0xEF,       // out dx, eax
		0x8B, 0x03, // mov eax, [ebx]          (start_info.magic)
		0xEF,
		0xB8, 0x18, 0x00, 0x00, 0x00, // mov eax, 0x18
		0x8E, 0xD8, // mov ds, eax
		0x8B, 0x43, 0x18, // mov eax, [ebx+0x18]  (cmdline_paddr)
		0xEF,
		0xF4, // hlt
	}
	bzCode = []byte{
		0xBA, 0x00, 0x05, 0x00, 0x00, // mov edx, 0x500
		0x48, 0x89, 0xF0, // mov rax, rsi
		0xEF,                               // out dx, eax
		0x8B, 0x86, 0x02, 0x02, 0x00, 0x00, // mov eax, [rsi+0x202]  ("HdrS")
		0xEF,
		0x8B, 0x86, 0x18, 0x02, 0x00, 0x00, // mov eax, [rsi+0x218]  (ramdisk_image)
		0x8B, 0x00, // mov eax, [rax]        (the initrd, high in RAM)
		0xEF,
		0xB8, 0x18, 0x00, 0x00, 0x00, // mov eax, 0x18
		0x8E, 0xD8, // mov ds, eax
		0x8B, 0x86, 0x10, 0x02, 0x00, 0x00, // mov eax, [rsi+0x210]  (type_of_loader...)
		0xEF,
		0xF4, // hlt
	}
)

func TestKVMEntry(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no KVM: %v", err)
	}
	initrd := []byte("INIT-initrd")
	bzo := defaultBz()
	bz := makeBzImage(bzo)
	pm := len(bz) - bzo.kernelLen
	copy(bz[pm+0x200:], bzCode)
	pvho := defaultPVH()
	copy(pvho.segs[0].data[0x40:], pvhCode)

	for _, c := range []struct {
		name   string
		kernel []byte
		want   []uint32
	}{
		{"bzImage64", bz, []uint32{BootParamsAddr, 0x53726448, binary.LittleEndian.Uint32(initrd), 0xff | (loadedHigh|canUseHeap)<<8}},
		{"PVH32", makeELF(pvho), []uint32{StartInfoAddr, startInfoMagic, CmdlineAddr}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := runKVM(t, c.kernel, initrd)
			if len(got) != len(c.want) {
				t.Fatalf("guest wrote %#x to port 0x500; want %#x", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("guest out #%d = %#x; want %#x", i, got[i], c.want[i])
				}
			}
		})
	}
}

// runKVM loads kernel into a fresh VM, applies the entry state and runs
// the vCPU until it halts, returning the 32-bit values it wrote to 0x500.
func runKVM(t *testing.T, kernel, initrd []byte) []uint32 {
	tv := kvmtest.New(t, kvmTestMem, false)
	sys, vm, buf := tv.Sys, tv.VM, tv.Mem
	mem := &testMem{ram: []Range{{0, kvmTestMem}}, bufs: [][]byte{buf}}
	e, err := Load(mem, mem.ram, kernel, initrd, "console=ttyS0")
	if err != nil {
		t.Fatalf("Load = %v", err)
	}

	cpu, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	if ids, err := sys.SupportedCPUID(); err == nil {
		if err := cpu.SetCPUID2(ids); err != nil {
			t.Fatal(err)
		}
	}
	regs, err := cpu.Regs()
	if err != nil {
		t.Fatal(err)
	}
	sregs, err := cpu.Sregs()
	if err != nil {
		t.Fatal(err)
	}
	e.Apply(&regs, &sregs)
	if err := cpu.SetSregs(sregs); err != nil {
		t.Fatal(err)
	}
	if err := cpu.SetRegs(regs); err != nil {
		t.Fatal(err)
	}

	var outs []uint32
	for range 100 {
		if err := cpu.Exec(); err != nil {
			t.Fatalf("KVM_RUN: %v", err)
		}
		switch r := cpu.Run().ExitReason(); r {
		case kvm.ExitIO:
			io, err := cpu.Run().IO()
			if err != nil {
				t.Fatal(err)
			}
			if !io.Out || io.Port != 0x500 || io.Size != 4 {
				t.Fatalf("unexpected I/O exit %+v", io)
			}
			outs = append(outs, binary.LittleEndian.Uint32(io.Data))
		case kvm.ExitHLT:
			return outs
		default:
			regs, _ := cpu.Regs()
			if r == kvm.ExitFailEntry {
				t.Fatalf("KVM exit FAIL_ENTRY reason %#x at RIP %#x", cpu.Run().FailEntry(), regs.RIP)
			}
			if r == kvm.ExitInternalError {
				sub, data := cpu.Run().InternalError()
				t.Fatalf("KVM exit INTERNAL_ERROR suberror %d data %#x at RIP %#x", sub, data, regs.RIP)
			}
			t.Fatalf("KVM exit %s at RIP %#x after outs %#x", kvm.ExitName(r), regs.RIP, outs)
		}
	}
	t.Fatalf("guest did not halt; outs %#x", outs)
	return nil
}
