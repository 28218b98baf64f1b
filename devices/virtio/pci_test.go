package virtio

import (
	"encoding/binary"
	"testing"

	"vmm/devices/pci"
	"vmm/kvm"

	"vmm/devices/virtio/virtiotest"
)

// fakeRoutes records committed GSI routing tables.
type fakeRoutes struct{ tables [][]kvm.RoutingEntry }

func (f *fakeRoutes) SetGSIRouting(e []kvm.RoutingEntry) error {
	f.tables = append(f.tables, e)
	return nil
}

const tBAR = 0xc000_0000

type pciRig struct {
	t      testing.TB
	p      *PCI
	vm     *fakeKVM
	routes *fakeRoutes
	levels []bool
}

// newTestPCI builds a transport for dev with INTx recorded, and enables
// memory decode and bus mastering as a driver does first.
func newTestPCI(t testing.TB, dev *fakeDevice) *pciRig {
	t.Helper()
	r := &pciRig{t: t, vm: &fakeKVM{}, routes: &fakeRoutes{}}
	router := pci.NewGSIRouter(r.routes, pci.DefaultIRQChipRoutes(), pci.IOAPICPins)
	p, err := NewPCI(dev, make(virtiotest.Mem, tMemSize), r.vm, router, PCIOptions{BARAddr: tBAR, INTx: func(l bool) { r.levels = append(r.levels, l) }})
	if err != nil {
		t.Fatalf("NewPCI() = %v; want nil", err)
	}
	t.Cleanup(func() { p.Close() })
	r.p = p
	r.cfgW(pci.RegCommand, 2, pci.CommandMemory|pci.CommandBusMaster)
	return r
}

func (r *pciRig) cfgR(off uint64, n int) uint32 {
	var b [4]byte
	r.p.ReadConfig(off, b[:n])
	return binary.LittleEndian.Uint32(b[:])
}

func (r *pciRig) cfgW(off uint64, n int, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	r.p.WriteConfig(off, b[:n])
}

func (r *pciRig) rd(off uint64, n int) uint64 {
	var b [8]byte
	r.p.Read(off, b[:n])
	return binary.LittleEndian.Uint64(b[:])
}

func (r *pciRig) wr(off uint64, n int, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	r.p.Write(off, b[:n])
}

// SetStatus, Status, SetDriverFeatures and SetupQueue are the common
// configuration's registers as virtiotest's handshake sees them.
func (r *pciRig) SetStatus(s uint32) { r.wr(commonStatus, 1, uint64(s)) }
func (r *pciRig) Status() uint32     { return uint32(r.rd(commonStatus, 1)) }

func (r *pciRig) SetDriverFeatures(sel, bits uint32) {
	r.wr(commonGFSelect, 4, uint64(sel))
	r.wr(commonGF, 4, uint64(bits))
}

func (r *pciRig) SetupQueue(i uint32, size uint16, desc, avail, used uint64) {
	r.wr(commonQSelect, 2, uint64(i))
	r.wr(commonQSize, 2, uint64(size))
	r.wr(commonQDescLo, 4, desc&0xffffffff)
	r.wr(commonQDescHi, 4, desc>>32)
	r.wr(commonQAvailLo, 8, avail)
	r.wr(commonQUsedLo, 4, used&0xffffffff)
	r.wr(commonQUsedHi, 4, used>>32)
	r.wr(commonQEnable, 2, 1)
}

// negotiate runs the feature handshake and returns the status.
func (r *pciRig) negotiate(features uint64) uint64 {
	return uint64(virtiotest.Negotiate(r, features))
}

// setupQueue configures queue q at the test layout.
func (r *pciRig) setupQueue(q, size uint64) {
	r.SetupQueue(uint32(q), uint16(size), tDesc, tAvail, tUsed)
}

// enableMSIX sets MSI-X enable in the capability's control word.
func (r *pciRig) enableMSIX(on bool) {
	v := uint32(0)
	if on {
		v = 1 << 15
	}
	r.cfgW(uint64(r.p.msixCap+2), 2, v)
}

func TestPCIIdentity(t *testing.T) {
	r := newTestPCI(t, testDevice())
	for _, tt := range []struct {
		name string
		off  uint64
		n    int
		want uint32
	}{
		{"vendor/device", 0, 4, 0x10431af4},
		{"revision/class", pci.RegRevision, 4, 0x07800001},
		{"subsystem", pci.RegSubsysVendor, 4, 0x11001af4},
		{"BAR 4 low", pci.RegBAR0 + 16, 4, tBAR | 4},
		{"BAR 5 (BAR 4 high)", pci.RegBAR0 + 20, 4, 0},
		{"interrupt pin", pci.RegInterruptPin, 1, 1},
	} {
		if got := r.cfgR(tt.off, tt.n); got != tt.want {
			t.Errorf("%s = %#x; want %#x", tt.name, got, tt.want)
		}
	}
	r.cfgW(pci.RegBAR0+16, 4, 0xffffffff)
	r.cfgW(pci.RegBAR0+20, 4, 0xffffffff)
	if lo, hi := r.cfgR(pci.RegBAR0+16, 4), r.cfgR(pci.RegBAR0+20, 4); lo != ^uint32(PCIBARSize-1)|4 || hi != 0xffffffff {
		t.Errorf("BAR 4 sizing = %#x %#x; want %#x ffffffff", lo, hi, ^uint32(PCIBARSize-1)|4)
	}
	if got := r.rd(commonNumQ, 2); got != 0xffff {
		t.Errorf("BAR read while the BAR is moved away = %#x; want all ones", got)
	}
	r.cfgW(pci.RegBAR0+16, 4, tBAR)
	r.cfgW(pci.RegBAR0+20, 4, 0)

	// The vendor capabilities, in order, each pointing into BAR 4.
	caps := pci.Capabilities(r.p)
	wantTypes := []byte{pciCapCommon, pciCapNotify, pciCapISR, pciCapDevice, pciCapPCICfg}
	if len(caps) != 1+len(wantTypes) || caps[0].ID != pci.CapMSIX {
		t.Fatalf("Capabilities() = %v; want MSI-X then 5 vendor capabilities", caps)
	}
	wantOff := []uint32{pciCommonOff, pciNotifyOff, pciISROff, pciDeviceCfgOff, 0}
	for i, c := range caps[1:] {
		o := uint64(c.Offset)
		typ, bar, off := r.cfgR(o+3, 1), r.cfgR(o+4, 1), r.cfgR(o+8, 4)
		if c.ID != pciCapVendor || byte(typ) != wantTypes[i] || off != wantOff[i] {
			t.Errorf("vendor capability %d: id %#x cfg_type %d offset %#x; want 9, %d, %#x", i, c.ID, typ, off, wantTypes[i], wantOff[i])
		}
		if wantTypes[i] != pciCapPCICfg && bar != pciBAR {
			t.Errorf("vendor capability %d: bar %d; want %d", i, bar, pciBAR)
		}
		if wantTypes[i] == pciCapNotify {
			if l, m := r.cfgR(o+2, 1), r.cfgR(o+16, 4); l != 20 || m != pciNotifyMult {
				t.Errorf("notify capability: cap_len %d multiplier %d; want 20, %d", l, m, pciNotifyMult)
			}
		}
	}
	msix := uint64(caps[0].Offset)
	if n, tbl, pba := r.cfgR(msix+2, 2)&0x7ff, r.cfgR(msix+4, 4), r.cfgR(msix+8, 4); n != 3 || tbl != pciMSIXTableOff|pciBAR || pba != pciMSIXPBAOff|pciBAR {
		t.Errorf("MSI-X: table size %d, table %#x, PBA %#x; want 3 (4 vectors), %#x, %#x", n+1, tbl, pba, pciMSIXTableOff|pciBAR, pciMSIXPBAOff|pciBAR)
	}
}

func TestPCIFeatures(t *testing.T) {
	for _, tt := range []struct {
		name     string
		features uint64
		ok       bool
	}{
		{"version 1 and device bits", FeatureVersion1 | 1<<1, true},
		{"no VERSION_1", 1 << 1, false},
		{"not offered", FeatureVersion1 | 1<<2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestPCI(t, testDevice())
			r.wr(commonDFSelect, 4, 1)
			if got := r.rd(commonDF, 4); got != offeredFeatures>>32 { // bit 34 is a transport bit: dropped
				t.Errorf("device_feature[1] = %#x; want %#x", got, offeredFeatures>>32)
			}
			st := r.negotiate(tt.features)
			if got := st&statusFeaturesOK != 0; got != tt.ok {
				t.Errorf("FEATURES_OK kept = %v; want %v", got, tt.ok)
			}
			r.wr(commonGFSelect, 4, 0)
			if got := r.rd(commonGF, 4); got != tt.features&0xffffffff {
				t.Errorf("driver_feature[0] = %#x; want %#x", got, tt.features&0xffffffff)
			}
		})
	}
}

func TestPCIQueuesAndActivate(t *testing.T) {
	dev := testDevice()
	r := newTestPCI(t, dev)
	if got := r.rd(commonNumQ, 2); got != 3 {
		t.Errorf("num_queues = %d; want 3", got)
	}
	r.wr(commonQSelect, 2, 2)
	if got, off := r.rd(commonQSize, 2), r.rd(commonQNOff, 2); got != 32 || off != 2 {
		t.Errorf("queue 2: size %d notify_off %d; want 32 (the maximum), 2", got, off)
	}
	if st := r.negotiate(FeatureVersion1); st&statusFeaturesOK == 0 {
		t.Fatalf("FEATURES_OK refused")
	}
	r.setupQueue(1, 8)
	r.wr(commonQSelect, 2, 1)
	if d, a, u := r.rd(commonQDescLo, 8), r.rd(commonQAvailLo, 4), r.rd(commonQUsedLo, 8); d != tDesc || a != tAvail || u != tUsed {
		t.Errorf("queue 1 rings = %#x %#x %#x; want %#x %#x %#x", d, a, u, tDesc, tAvail, tUsed)
	}
	r.wr(commonQSize, 2, 4) // enabled: ignored
	if got := r.rd(commonQSize, 2); got != 8 {
		t.Errorf("queue size after a write to an enabled queue = %d; want 8", got)
	}
	r.wr(commonStatus, 1, statusAcknowledge|statusDriver|statusFeaturesOK|statusDriverOK)
	if len(dev.activations) != 1 {
		t.Fatalf("Activate called %d times; want 1", len(dev.activations))
	}
	ctx := dev.activations[0]
	if ctx.Queues[1] == nil || ctx.Queues[0] != nil || len(ctx.Notifiers) != 3 || ctx.Features != FeatureVersion1 {
		t.Errorf("ActivateContext: queue rings %v/%v, %d notifiers, features %#x; want queue 1 only, 3, VERSION_1",
			ctx.Queues[0] != nil, ctx.Queues[1] != nil, len(ctx.Notifiers), ctx.Features)
	}
	// A kick that reached userspace goes to the queue's eventfd.
	r.wr(pciNotifyOff+4, 2, 1)
	if got := virtiotest.EventCount(t, r.p.notify[1]); got != 1 {
		t.Errorf("queue 1 eventfd after a kick = %d; want 1", got)
	}
	// Reset.
	r.wr(commonStatus, 1, 0)
	if dev.resets != 1 || r.rd(commonStatus, 1) != 0 {
		t.Errorf("after writing status 0: %d resets, status %#x; want 1, 0", dev.resets, r.rd(commonStatus, 1))
	}
	r.wr(commonQSelect, 2, 1)
	if r.rd(commonQEnable, 2) != 0 || r.rd(commonQSize, 2) != 16 || r.rd(commonQMSIX, 2) != pciNoVector {
		t.Errorf("queue 1 after reset: enable %d size %d vector %#x; want 0, 16, NO_VECTOR", r.rd(commonQEnable, 2), r.rd(commonQSize, 2), r.rd(commonQMSIX, 2))
	}
}

func TestPCIActivateFailure(t *testing.T) {
	dev := testDevice()
	r := newTestPCI(t, dev)
	r.negotiate(FeatureVersion1)
	r.wr(commonQSelect, 2, 0)
	r.wr(commonQDescLo, 4, 0xffff0000) // outside RAM
	r.wr(commonQEnable, 2, 1)
	r.wr(commonStatus, 1, statusAcknowledge|statusDriver|statusFeaturesOK|statusDriverOK)
	if st := r.rd(commonStatus, 1); st&statusNeedsReset == 0 {
		t.Errorf("status = %#x; want DEVICE_NEEDS_RESET", st)
	}
	if isr := r.rd(pciISROff, 1); isr != isrConfigChanged {
		t.Errorf("ISR = %#x; want a config change", isr)
	}
}

func TestPCIMSIX(t *testing.T) {
	r := newTestPCI(t, testDevice())
	r.enableMSIX(true)
	r.wr(commonMSIX, 2, 3)
	r.wr(commonQSelect, 2, 1)
	r.wr(commonQMSIX, 2, 1)
	if c, q := r.rd(commonMSIX, 2), r.rd(commonQMSIX, 2); c != 3 || q != 1 {
		t.Errorf("config/queue vectors = %d/%d; want 3/1", c, q)
	}
	r.wr(commonQMSIX, 2, 4) // not in the table
	if got := r.rd(commonQMSIX, 2); got != pciNoVector {
		t.Errorf("queue vector 4 of 4 reads back %#x; want NO_VECTOR", got)
	}
	r.wr(commonQMSIX, 2, 1)
	// Program vector 1 (masked), signal queue 1: pending, no interrupt.
	e := uint64(pciMSIXTableOff + 16)
	r.wr(e, 4, 0xfee00000)
	r.wr(e+4, 4, 0)
	r.wr(e+8, 4, 0x41)
	r.p.irq.Signal(1)
	if got, pba := virtiotest.EventCount(t, r.p.vectors.FD(1)), r.rd(pciMSIXPBAOff, 8); got != 0 || pba != 2 {
		t.Errorf("masked vector: eventfd %d PBA %#x; want 0, 0x2", got, pba)
	}
	r.wr(e+12, 4, 0) // unmask: delivered, routed
	if got, pba := virtiotest.EventCount(t, r.p.vectors.FD(1)), r.rd(pciMSIXPBAOff, 8); got != 1 || pba != 0 {
		t.Errorf("after unmask: eventfd %d PBA %#x; want 1, 0", got, pba)
	}
	last := r.routes.tables[len(r.routes.tables)-1]
	if want := kvm.MSIRoute(r.p.MSIXGSI(1), 0xfee00000, 0x41); last[len(last)-1] != want {
		t.Errorf("last route = %+v; want %+v", last[len(last)-1], want)
	}
	// Config change through vector 3 (unprogrammed, masked): pending.
	r.p.irq.ConfigChanged()
	if !r.p.msix.Pending(3) || len(r.levels) != 0 {
		t.Errorf("config change: pending %v, INTx %v; want pending, no INTx", r.p.msix.Pending(3), r.levels)
	}
	if got := r.rd(commonCfgGeneration, 1); got != 1 {
		t.Errorf("config_generation = %d; want 1", got)
	}
}

func TestPCIINTx(t *testing.T) {
	r := newTestPCI(t, testDevice())
	r.p.irq.Signal(0)
	if len(r.levels) != 1 || !r.levels[0] || r.cfgR(pci.RegStatus, 2)&pci.StatusInterrupt == 0 {
		t.Fatalf("INTx after Signal = %v, status %#x; want raised, interrupt status set", r.levels, r.cfgR(pci.RegStatus, 2))
	}
	r.p.irq.ConfigChanged() // already high: no new edge
	if isr := r.rd(pciISROff, 1); isr != isrUsedBuffer|isrConfigChanged {
		t.Errorf("ISR = %#x; want 3", isr)
	}
	if len(r.levels) != 2 || r.levels[1] || r.rd(pciISROff, 1) != 0 {
		t.Errorf("INTx after reading ISR = %v; want lowered and ISR cleared", r.levels)
	}
	// INTx disable masks the line; clearing it re-raises a pending ISR.
	r.cfgW(pci.RegCommand, 2, pci.CommandMemory|pci.CommandINTxDisable)
	r.p.irq.Signal(0)
	if len(r.levels) != 2 {
		t.Errorf("INTx with INTx disable set = %v; want no change", r.levels)
	}
	r.cfgW(pci.RegCommand, 2, pci.CommandMemory)
	if len(r.levels) != 3 || !r.levels[2] {
		t.Errorf("INTx after clearing INTx disable = %v; want raised", r.levels)
	}
	// Enabling MSI-X lowers INTx.
	r.enableMSIX(true)
	if r.levels[len(r.levels)-1] {
		t.Errorf("INTx after enabling MSI-X = %v; want lowered", r.levels)
	}
}

func TestPCIRegistrations(t *testing.T) {
	r := newTestPCI(t, testDevice())
	if len(r.vm.ioeventfds) != 3 {
		t.Fatalf("%d ioeventfds; want 3", len(r.vm.ioeventfds))
	}
	for i, o := range r.vm.ioeventfds {
		if o.Addr != tBAR+pciNotifyOff+4*uint64(i) || o.Len != 0 || o.Datamatch != nil || o.PIO || o.FD != r.p.notify[i] {
			t.Errorf("ioeventfd %d = %+v; want any-length write at %#x, no datamatch", i, o, tBAR+pciNotifyOff+4*i)
		}
	}
	if len(r.vm.gsis) != 4 || r.vm.gsis[0] != pci.IOAPICPins || r.vm.gsis[3] != pci.IOAPICPins+3 {
		t.Errorf("irqfd GSIs = %v; want 24-27", r.vm.gsis)
	}
	if err := r.p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(r.vm.ioeventfds); n != 6 || !r.vm.ioeventfds[5].Deassign {
		t.Errorf("after Close: %d ioeventfd calls; want 3 deassigns", n)
	}
	if n := len(r.vm.irqfds); n != 8 || r.vm.irqfds[4] >= 0 {
		t.Errorf("after Close: irqfds %v; want 4 deassigned", r.vm.irqfds)
	}
}

func TestPCIDeviceConfigAndWindow(t *testing.T) {
	dev := testDevice()
	r := newTestPCI(t, dev)
	if got := r.rd(pciDeviceCfgOff+2, 2); got != 0x0403 {
		t.Errorf("device config at 2 = %#x; want 0x0403", got)
	}
	r.wr(pciDeviceCfgOff, 1, 0xaa)
	if dev.config[0] != 0xaa {
		t.Errorf("device config[0] = %#x; want 0xaa", dev.config[0])
	}
	// PCI_CFG window: read num_queues through config space.
	caps := pci.Capabilities(r.p)
	c := uint64(caps[len(caps)-1].Offset)
	r.cfgW(c+4, 1, pciBAR)
	r.cfgW(c+8, 4, commonNumQ)
	r.cfgW(c+12, 4, 2)
	if got := r.cfgR(c+16, 2); got != 3 {
		t.Errorf("num_queues through PCI_CFG = %d; want 3", got)
	}
	r.cfgW(c+8, 4, commonQSelect)
	r.cfgW(c+16, 2, 2)
	if got := r.rd(commonQSelect, 2); got != 2 {
		t.Errorf("queue_select after a PCI_CFG write = %d; want 2", got)
	}
	// Memory decode off: the BAR reads all ones and ignores writes.
	r.cfgW(pci.RegCommand, 2, 0)
	r.wr(commonQSelect, 2, 0)
	if got := r.rd(commonQSelect, 2); got != 0xffff {
		t.Errorf("BAR read with memory decode off = %#x; want 0xffff", got)
	}
	r.cfgW(pci.RegCommand, 2, pci.CommandMemory)
	if got := r.rd(commonQSelect, 2); got != 2 {
		t.Errorf("queue_select = %d; want 2 (the write with decode off was dropped)", got)
	}
}

func TestNewPCIErrors(t *testing.T) {
	router := pci.NewGSIRouter(&fakeRoutes{}, nil, 24)
	for _, tt := range []struct {
		name string
		dev  *fakeDevice
		opts PCIOptions
	}{
		{"bad queue size", &fakeDevice{sizes: []uint16{3}}, PCIOptions{BARAddr: tBAR}},
		{"unaligned BAR", testDevice(), PCIOptions{BARAddr: tBAR + 0x1000}},
		{"too many queues", &fakeDevice{sizes: make([]uint16, 2000)}, PCIOptions{BARAddr: tBAR}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewPCI(tt.dev, make(virtiotest.Mem, tMemSize), &fakeKVM{}, router, tt.opts); err == nil {
				t.Errorf("NewPCI() = nil error; want one")
			}
		})
	}
}
