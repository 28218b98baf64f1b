package boot

import "fmt"

// Kind is how the boot vCPU enters the kernel.
type Kind int

const (
	// BzImage64 is the 64-bit boot protocol: long mode, paging on,
	// RSI = boot_params.
	BzImage64 Kind = iota + 1
	// PVH32 is the PVH entry: 32-bit protected mode, paging off,
	// EBX = hvm_start_info.
	PVH32
)

func (k Kind) String() string {
	switch k {
	case BzImage64:
		return "bzImage64"
	case PVH32:
		return "PVH32"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Entry describes a loaded kernel: where everything went and how the boot
// vCPU must start. Apply turns it into register state.
type Entry struct {
	Kind       Kind
	EntryPoint uint64 // initial RIP
	Protocol   uint16 // bzImage boot protocol version (e.g. 0x20f); 0 for PVH

	BootParams uint64 // bzImage: boot_params address, passed in RSI
	StartInfo  uint64 // PVH: hvm_start_info address, passed in EBX

	Cmdline    uint64 // address of the NUL-terminated command line
	CmdlineLen uint64 // its length without the NUL
	Initrd     uint64 // initrd address, 0 if none
	InitrdSize uint64

	// KernelStart and KernelEnd bound the memory the kernel occupies,
	// including (for a bzImage) the room it needs to decompress (init_size).
	KernelStart, KernelEnd uint64

	MemoryMap []E820Entry // the map given to the guest
}

func (e *Entry) String() string {
	s := fmt.Sprintf("%v entry %#x kernel [%#x, %#x) cmdline %#x", e.Kind, e.EntryPoint, e.KernelStart, e.KernelEnd, e.Cmdline)
	if e.InitrdSize != 0 {
		s += fmt.Sprintf(" initrd [%#x, %#x)", e.Initrd, e.Initrd+e.InitrdSize)
	}
	return s
}
