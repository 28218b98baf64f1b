// Package kvmtest makes small real VMs for tests in other packages: one
// memory slot at guest address 0, KVM's private pages placed, and the
// in-kernel irqchip when asked. (kvm's own tests cannot import it.)
package kvmtest

import (
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"vmm/kvm"
)

// VM is a test VM; Mem is its RAM from guest address 0.
type VM struct {
	Sys *kvm.System
	VM  *kvm.VM
	Mem []byte
}

// New creates a VM with size bytes of RAM, skipping the test where
// /dev/kvm is unusable. It locks the test goroutine to its thread (vCPU
// ioctls must come from one thread) and cleans everything up at the end.
func New(t testing.TB, size int, irqchip bool) *VM {
	t.Helper()
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	steps := []error{vm.SetTSSAddr(0xfffbd000), vm.SetIdentityMapAddr(0xfffbc000)}
	if irqchip {
		steps = append(steps, vm.CreateIRQChip())
	}
	steps = append(steps, vm.SetUserMemoryRegion(kvm.UserMemoryRegion{
		MemorySize: uint64(size), UserspaceAddr: uint64(uintptr(unsafe.Pointer(&mem[0])))}))
	for _, err := range steps {
		if err != nil {
			t.Fatal(err)
		}
	}
	return &VM{Sys: sys, VM: vm, Mem: mem}
}
