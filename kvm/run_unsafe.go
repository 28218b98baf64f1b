package kvm

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exit reasons (KVM_EXIT_*).
const (
	ExitUnknown       = 0
	ExitException     = 1
	ExitIO            = 2
	ExitHypercall     = 3
	ExitDebug         = 4
	ExitHLT           = 5
	ExitMMIO          = 6
	ExitIRQWindowOpen = 7
	ExitShutdown      = 8
	ExitFailEntry     = 9
	ExitIntr          = 10
	ExitInternalError = 17
	ExitSystemEvent   = 24
)

// ExitName returns the KVM_EXIT_* name of reason r.
func ExitName(r uint32) string {
	names := map[uint32]string{
		ExitUnknown: "UNKNOWN", ExitException: "EXCEPTION", ExitIO: "IO",
		ExitHypercall: "HYPERCALL", ExitDebug: "DEBUG", ExitHLT: "HLT",
		ExitMMIO: "MMIO", ExitIRQWindowOpen: "IRQ_WINDOW_OPEN",
		ExitShutdown: "SHUTDOWN", ExitFailEntry: "FAIL_ENTRY", ExitIntr: "INTR",
		ExitInternalError: "INTERNAL_ERROR", ExitSystemEvent: "SYSTEM_EVENT",
	}
	if n, ok := names[r]; ok {
		return n
	}
	return fmt.Sprintf("exit %d", r)
}

// System event types (KVM_SYSTEM_EVENT_*).
const (
	SystemEventShutdown = 1
	SystemEventReset    = 2
	SystemEventCrash    = 3
)

// kvm_run header offsets from <linux/kvm.h>; the exit union starts at 32.
const (
	runImmediateExit = 1
	runExitReason    = 8
	runUnion         = 32
)

// Run is the vCPU's mmapped struct kvm_run.
type Run struct {
	mem []byte
}

func (r *Run) u8(off int) *uint8   { return (*uint8)(unsafe.Pointer(&r.mem[off])) }
func (r *Run) u16(off int) *uint16 { return (*uint16)(unsafe.Pointer(&r.mem[off])) }
func (r *Run) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&r.mem[off])) }
func (r *Run) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&r.mem[off])) }

// ExitReason is the KVM_EXIT_* value of the last exit.
func (r *Run) ExitReason() uint32 { return *r.u32(runExitReason) }

// SetImmediateExit makes the next (or current) KVM_RUN return EINTR at once.
func (r *Run) SetImmediateExit(on bool) {
	var v uint32
	if on {
		v = 1
	}
	// A 1-byte field; an atomic store on its aligned word keeps the race
	// detector and other threads honest. The neighbouring bytes are
	// request_interrupt_window (kept 0) and padding.
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&r.mem[0])), v<<(8*runImmediateExit))
}

// IO describes a KVM_EXIT_IO. Data aliases the kvm_run page: a read
// handler fills it before the next KVM_RUN.
type IO struct {
	Out   bool
	Size  int
	Port  uint16
	Count int
	Data  []byte
}

// IO decodes the io member of the exit union.
func (r *Run) IO() (IO, error) {
	dir := *r.u8(runUnion)
	size := int(*r.u8(runUnion + 1))
	port := *r.u16(runUnion + 2)
	count := int(*r.u32(runUnion + 4))
	off := *r.u64(runUnion + 8)
	n := uint64(size) * uint64(count)
	if off > uint64(len(r.mem)) || n > uint64(len(r.mem))-off {
		return IO{}, fmt.Errorf("KVM_EXIT_IO data offset %#x size %d outside kvm_run", off, n)
	}
	return IO{Out: dir == 1, Size: size, Port: port, Count: count, Data: r.mem[off : off+n]}, nil
}

// MMIO describes a KVM_EXIT_MMIO. Data aliases the kvm_run page.
type MMIO struct {
	Addr  uint64
	Data  []byte
	Write bool
}

// MMIO decodes the mmio member of the exit union.
func (r *Run) MMIO() MMIO {
	n := *r.u32(runUnion + 16)
	if n > 8 {
		n = 8
	}
	return MMIO{
		Addr:  *r.u64(runUnion),
		Data:  r.mem[runUnion+8 : runUnion+8+int(n)],
		Write: *r.u8(runUnion + 20) != 0,
	}
}

// InternalError decodes KVM_EXIT_INTERNAL_ERROR: suberror and data words.
func (r *Run) InternalError() (suberror uint32, data []uint64) {
	suberror = *r.u32(runUnion)
	n := *r.u32(runUnion + 4)
	if n > 16 {
		n = 16
	}
	for i := uint32(0); i < n; i++ {
		data = append(data, *r.u64(runUnion + 8 + 8*int(i)))
	}
	return suberror, data
}

// FailEntry returns the hardware entry failure reason.
func (r *Run) FailEntry() uint64 { return *r.u64(runUnion) }

// SystemEvent returns the type of a KVM_EXIT_SYSTEM_EVENT.
func (r *Run) SystemEvent() uint32 { return *r.u32(runUnion) }

func (c *VCPU) mapRun(size int) error {
	mem, err := unix.Mmap(c.fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap kvm_run of vCPU %d: %w", c.id, err)
	}
	c.run = &Run{mem: mem}
	return nil
}

func (c *VCPU) unmapRun() error {
	if c.run == nil {
		return nil
	}
	err := unix.Munmap(c.run.mem)
	c.run = nil
	return err
}
