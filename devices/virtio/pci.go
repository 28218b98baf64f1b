package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"

	"vmm/devices/pci"
	"vmm/kvm"
)

// PCIKVM is what the virtio-pci transport needs from the hypervisor;
// *kvm.VM satisfies it.
type PCIKVM interface {
	KVM
	IRQFDDeassign(fd int, gsi uint32) error
}

// PCIOptions place a virtio-pci function.
type PCIOptions struct {
	// BARAddr is the guest physical address of BAR 4 (64-bit memory,
	// PCIBARSize bytes, aligned to its size) in the MMIO hole. The caller
	// puts the transport on the MMIO bus there; the guest keeps this
	// assignment as long as it lies in the host bridge's _CRS window.
	BARAddr uint64
	// Class overrides the PCI class code (default: by device type).
	Class uint32
	// INTx drives the function's INTA# line (the GSI the _PRT names for
	// its slot); nil means the function has no INTx fallback.
	INTx func(level bool)
}

// PCI is a virtio-pci modern transport (virtio 1.2 §4.1) for one device:
// a pci.Function for the host bridge and the BAR 4 window for the MMIO
// bus. Kicks go through one ioeventfd per queue at its notify address,
// interrupts through MSI-X vectors bound to irqfds (or INTx without
// MSI-X). Config and BAR accesses run on vCPU threads.
type PCI struct {
	vm      PCIKVM
	opts    PCIOptions
	cfg     *pci.ConfigSpace
	msix    *pci.MSIX
	vectors *pci.IRQFDVectors
	msixCap int
	cfgCap  int // the PCI_CFG access capability
	irq     pciInterrupt

	mu sync.Mutex
	// Transport state; guarded by mu.
	transport
	ioeventfds int
	closed     bool
}

// NewPCI creates the transport for dev with its BAR at opts.BARAddr,
// one MSI-X vector per queue plus one for config changes (GSIs from
// router), and registers its eventfds with vm.
func NewPCI(dev Device, mem Memory, vm PCIKVM, router pci.MSIRouter, opts PCIOptions) (*PCI, error) {
	sizes := dev.QueueSizes()
	name := fmt.Sprintf("virtio-pci at %#x", opts.BARAddr)
	if len(sizes) > pciMaxQueues || len(sizes)+1 > pciMaxVectors {
		return nil, fmt.Errorf("%s: %d queues do not fit", name, len(sizes))
	}
	for i, n := range sizes {
		if n == 0 || n&(n-1) != 0 || n > maxQueueSize {
			return nil, fmt.Errorf("%s: queue %d: max size %d is not a power of 2 in [1, %d]", name, i, n, maxQueueSize)
		}
	}
	t := &PCI{vm: vm, opts: opts}
	t.transport = transport{name: name, dev: dev, mem: mem,
		offered: dev.Features()&^transportFeatures | offeredFeatures, intr: &t.irq}
	if err := t.setup(sizes, router); err != nil {
		t.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

func (t *PCI) setup(sizes []uint16, router pci.MSIRouter) error {
	class := t.opts.Class
	if class == 0 {
		class = pciClass(t.dev.Type())
	}
	var pin uint8
	if t.opts.INTx != nil {
		pin = 1
	}
	t.cfg = pci.NewConfigSpace(pci.Header{
		VendorID: pciVendor, DeviceID: uint16(pciDeviceBase + t.dev.Type()), Revision: pciRevision,
		Class: class, SubsysVendorID: pciVendor, SubsysID: pciSubsysID, InterruptPin: pin,
	})
	if err := t.cfg.SetBAR(pciBAR, pci.BAR{Kind: pci.BARMem64, Size: PCIBARSize, Addr: t.opts.BARAddr}); err != nil {
		return err
	}
	vectors, err := pci.NewIRQFDVectors(len(sizes)+1, router, t.vm)
	if err != nil {
		return err
	}
	t.vectors = vectors
	t.msix = pci.NewMSIX(len(sizes)+1, vectors)
	t.irq.init(t.cfg, t.msix, t.opts.INTx, len(sizes))
	if err := t.addCapabilities(); err != nil {
		return err
	}
	for i, n := range sizes {
		t.queues = append(t.queues, NewQueueConfig(i, n))
		fd, err := newEventFD()
		if err != nil {
			return fmt.Errorf("queue %d: notify eventfd: %w", i, err)
		}
		t.notify = append(t.notify, fd)
		if err := t.vm.IOEventFD(t.ioeventfd(i, false)); err != nil {
			return fmt.Errorf("queue %d: %w", i, err)
		}
		t.ioeventfds++
	}
	return nil
}

// ioeventfd describes queue i's kick: any write to its notify address
// (no datamatch: the address already names the queue).
func (t *PCI) ioeventfd(i int, deassign bool) kvm.IOEventFD {
	return kvm.IOEventFD{Addr: t.opts.BARAddr + pciNotifyOff + pciNotifyMult*uint64(i), FD: t.notify[i], Deassign: deassign}
}

// vendorCap is a virtio_pci_cap body (after ID and next) for a BAR 4
// structure, with extra trailing fields.
func vendorCap(cfgType byte, off, length uint32, extra ...byte) []byte {
	b := []byte{byte(16 + len(extra)), cfgType, pciBAR, 0, 0, 0}
	b = binary.LittleEndian.AppendUint32(b, off)
	b = binary.LittleEndian.AppendUint32(b, length)
	return append(b, extra...)
}

func (t *PCI) addCapabilities() error {
	body, wmask := t.msix.Capability(pciBAR, pciMSIXTableOff, pciMSIXPBAOff)
	off, err := t.cfg.AddCapability(pci.CapMSIX, body, wmask)
	if err != nil {
		return err
	}
	t.msixCap = off
	mult := binary.LittleEndian.AppendUint32(nil, pciNotifyMult)
	for _, c := range [][]byte{
		vendorCap(pciCapCommon, pciCommonOff, pciCommonSize),
		vendorCap(pciCapNotify, pciNotifyOff, uint32(pciNotifyMult*len(t.dev.QueueSizes())), mult...),
		vendorCap(pciCapISR, pciISROff, pciISRSize),
		vendorCap(pciCapDevice, pciDeviceCfgOff, pciDeviceCfgSize),
	} {
		if _, err := t.cfg.AddCapability(pciCapVendor, c, nil); err != nil {
			return err
		}
	}
	// PCI_CFG: bar, offset and length are the driver's, then a 4-byte
	// data window into the BAR.
	c := vendorCap(pciCapPCICfg, 0, 0, 0, 0, 0, 0)
	c[2] = 0
	wm := make([]byte, len(c))
	wm[2] = 0xff
	for i := 6; i < len(wm); i++ {
		wm[i] = 0xff
	}
	if t.cfgCap, err = t.cfg.AddCapability(pciCapVendor, c, wm); err != nil {
		return err
	}
	return nil
}

// pciClass is the class code QEMU gives each device type.
func pciClass(typ uint32) uint32 {
	switch typ {
	case 1:
		return 0x020000 // network controller
	case 2:
		return 0x018000 // mass storage, other
	case 3:
		return 0x078000 // communication controller, other
	}
	return 0xff0000 // unassigned class
}

// Config returns the function's configuration space, for tests.
func (t *PCI) Config() *pci.ConfigSpace { return t.cfg }

// BARAddr is where the caller must put the BAR window on the MMIO bus.
func (t *PCI) BARAddr() uint64 { return t.opts.BARAddr }

// Size is the length of the BAR window.
func (t *PCI) Size() uint64 { return PCIBARSize }

// MSIXGSI returns the GSI of MSI-X vector v (queues first, then config).
func (t *PCI) MSIXGSI(v int) uint32 { return t.vectors.GSI(v) }

// Close resets the device, removes the eventfds from KVM, closes them
// and frees the GSIs.
func (t *PCI) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.status != 0 {
		t.reset()
	}
	var errs []error
	for i := range t.ioeventfds {
		errs = append(errs, t.vm.IOEventFD(t.ioeventfd(i, true)))
	}
	for _, fd := range t.notify {
		errs = append(errs, unix.Close(fd))
	}
	if t.vectors != nil {
		errs = append(errs, t.vectors.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("virtio-pci at %#x: close: %w", t.opts.BARAddr, err)
	}
	return nil
}

// ReadConfig implements pci.Function.
func (t *PCI) ReadConfig(offset uint64, data []byte) {
	if t.cfgWindow(offset, data, false) {
		return
	}
	t.cfg.ReadConfig(offset, data)
}

// WriteConfig implements pci.Function, then applies what the write
// changed: the MSI-X control word and the INTx disable bit.
func (t *PCI) WriteConfig(offset uint64, data []byte) {
	if t.cfgWindow(offset, data, true) {
		return
	}
	t.cfg.WriteConfig(offset, data)
	if pci.Overlaps(offset, data, uint64(t.msixCap+2), 2) {
		t.msix.SetControl(t.cfg.Load16(t.msixCap + 2))
		t.irq.update()
	}
	if pci.Overlaps(offset, data, pci.RegCommand, 2) {
		t.irq.update()
	}
}

// cfgWindow performs a PCI_CFG capability access (virtio 1.2 §4.1.4.9):
// a config access to pci_cfg_data reads or writes length bytes of the
// BAR at the capability's offset. It reports whether offset was there.
func (t *PCI) cfgWindow(offset uint64, data []byte, write bool) bool {
	dataOff := uint64(t.cfgCap + 16)
	if !pci.Overlaps(offset, data, dataOff, 4) {
		return false
	}
	if !write {
		clear(data)
	}
	bar := t.cfg.Load32(t.cfgCap+4) & 0xff
	off := uint64(t.cfg.Load32(t.cfgCap + 8))
	n := uint64(t.cfg.Load32(t.cfgCap + 12))
	if offset != dataOff || bar != pciBAR || (n != 1 && n != 2 && n != 4) || n > uint64(len(data)) || off%n != 0 {
		return true
	}
	if write {
		t.barWrite(off, data[:n])
	} else {
		t.barRead(off, data[:n])
	}
	return true
}

// decoding reports whether the BAR answers: memory decode on and the
// BAR where the caller mapped the window.
func (t *PCI) decoding() bool {
	return t.cfg.Command()&pci.CommandMemory != 0 && t.cfg.BARAddr(pciBAR) == t.opts.BARAddr
}

// Read handles a guest load at offset within the BAR.
func (t *PCI) Read(offset uint64, data []byte) {
	if !t.decoding() {
		for i := range data {
			data[i] = 0xff
		}
		return
	}
	t.barRead(offset, data)
}

// Write handles a guest store at offset within the BAR.
func (t *PCI) Write(offset uint64, data []byte) {
	if t.decoding() {
		t.barWrite(offset, data)
	}
}

func (t *PCI) barRead(offset uint64, data []byte) {
	clear(data)
	n := uint64(len(data))
	switch {
	case offset < pciCommonSize:
		t.readCommon(offset, data)
	case offset >= pciISROff && offset < pciISROff+pciISRSize:
		if offset == pciISROff {
			data[0] = t.irq.readISR()
		}
	case offset >= pciDeviceCfgOff && offset+n <= pciDeviceCfgOff+pciDeviceCfgSize:
		if n == 1 || n == 2 || n == 4 || n == 8 {
			t.dev.ReadConfig(offset-pciDeviceCfgOff, data)
		}
	case offset >= pciMSIXTableOff && offset < pciMSIXPBAOff:
		t.msix.ReadTable(offset-pciMSIXTableOff, data)
	case offset >= pciMSIXPBAOff:
		t.msix.ReadPBA(offset-pciMSIXPBAOff, data)
	}
}

func (t *PCI) barWrite(offset uint64, data []byte) {
	n := uint64(len(data))
	switch {
	case offset < pciCommonSize:
		t.writeCommon(offset, data)
	case offset >= pciDeviceCfgOff && offset+n <= pciDeviceCfgOff+pciDeviceCfgSize:
		if n == 1 || n == 2 || n == 4 || n == 8 {
			t.dev.WriteConfig(offset-pciDeviceCfgOff, data)
		}
	case offset >= pciNotifyOff && offset < pciNotifyOff+pciNotifyMult*uint64(len(t.notify)):
		// A kick KVM did not absorb (no ioeventfd yet or a PCI_CFG access).
		t.kick((offset - pciNotifyOff) / pciNotifyMult)
	case offset >= pciMSIXTableOff && offset < pciMSIXPBAOff:
		t.msix.WriteTable(offset-pciMSIXTableOff, data)
	default:
		t.ignored("write", offset, len(data))
	}
}

func (t *PCI) kick(q uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed && q < uint64(len(t.notify)) {
		kickEventFD(t.notify[q])
	}
}

func (t *PCI) ignored(what string, offset uint64, n int) {
	slog.Debug("virtio-pci: access ignored", "bar", fmt.Sprintf("%#x", t.opts.BARAddr), "op", what, "offset", fmt.Sprintf("%#x", offset), "size", n)
}
