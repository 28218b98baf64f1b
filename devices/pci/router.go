package pci

import (
	"fmt"
	"slices"
	"sync"

	"vmm/kvm"
)

// MSIRouter owns GSI numbers for MSI messages. KVM has one routing
// table per VM and KVM_SET_GSI_ROUTING replaces all of it, so every
// device that routes MSIs must share one router: it keeps the irqchip
// routes and all MSI routes and commits the whole table on each change.
type MSIRouter interface {
	// AllocGSI reserves a GSI for MSI use (no route yet).
	AllocGSI() (uint32, error)
	// SetMSIRoute points gsi at an MSI message and commits the table.
	SetMSIRoute(gsi uint32, addr uint64, data uint32) error
	// FreeGSI drops gsi's route and returns it to the pool.
	FreeGSI(gsi uint32) error
}

// RoutingTable is the KVM call the router makes; *kvm.VM satisfies it.
type RoutingTable interface {
	SetGSIRouting(entries []kvm.RoutingEntry) error
}

// IOAPICPins is the in-kernel IOAPIC's pin count; GSIs from here up are
// free for MSIs.
const IOAPICPins = 24

// maxGSI bounds the table (KVM_MAX_IRQ_ROUTES is 4096 on x86).
const maxGSI = 4095

// DefaultIRQChipRoutes is the table KVM installs with KVM_CREATE_IRQCHIP
// (GSIs 0-15 to both PICs and the IOAPIC, 16-23 to the IOAPIC only), so
// that replacing it to add MSIs changes nothing for legacy interrupts.
func DefaultIRQChipRoutes() []kvm.RoutingEntry {
	var r []kvm.RoutingEntry
	for gsi := range uint32(IOAPICPins) {
		r = append(r, kvm.IRQChipRoute(gsi, kvm.IRQChipIOAPIC, gsi))
		if gsi < 8 {
			r = append(r, kvm.IRQChipRoute(gsi, kvm.IRQChipPICMaster, gsi))
		} else if gsi < 16 {
			r = append(r, kvm.IRQChipRoute(gsi, kvm.IRQChipPICSlave, gsi-8))
		}
	}
	return r
}

// GSIRouter is the VM's MSIRouter.
type GSIRouter struct {
	vm   RoutingTable
	base []kvm.RoutingEntry

	mu sync.Mutex
	// Allocation and routes; guarded by mu.
	next  uint32
	free  []uint32
	inUse map[uint32]bool
	msi   map[uint32]kvm.RoutingEntry
}

// NewGSIRouter returns a router that keeps base (usually
// DefaultIRQChipRoutes()) and allocates MSI GSIs from first up.
func NewGSIRouter(vm RoutingTable, base []kvm.RoutingEntry, first uint32) *GSIRouter {
	return &GSIRouter{vm: vm, base: base, next: first, inUse: map[uint32]bool{}, msi: map[uint32]kvm.RoutingEntry{}}
}

// AllocGSI implements MSIRouter.
func (g *GSIRouter) AllocGSI() (uint32, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var gsi uint32
	switch {
	case len(g.free) > 0:
		gsi, g.free = g.free[len(g.free)-1], g.free[:len(g.free)-1]
	case g.next <= maxGSI:
		gsi = g.next
		g.next++
	default:
		return 0, fmt.Errorf("pci: no free GSI for MSI")
	}
	g.inUse[gsi] = true
	return gsi, nil
}

// SetMSIRoute implements MSIRouter.
func (g *GSIRouter) SetMSIRoute(gsi uint32, addr uint64, data uint32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.inUse[gsi] {
		return fmt.Errorf("pci: GSI %d was not allocated", gsi)
	}
	g.msi[gsi] = kvm.MSIRoute(gsi, addr, data)
	return g.commit()
}

// FreeGSI implements MSIRouter.
func (g *GSIRouter) FreeGSI(gsi uint32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.inUse[gsi] {
		return fmt.Errorf("pci: GSI %d was not allocated", gsi)
	}
	delete(g.inUse, gsi)
	g.free = append(g.free, gsi)
	if _, routed := g.msi[gsi]; !routed {
		return nil
	}
	delete(g.msi, gsi)
	return g.commit()
}

// Entries returns the table as last committed (for tests and logs).
func (g *GSIRouter) Entries() []kvm.RoutingEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entries()
}

// entries builds the whole table; mu must be held.
func (g *GSIRouter) entries() []kvm.RoutingEntry {
	e := slices.Clone(g.base)
	gsis := make([]uint32, 0, len(g.msi))
	for gsi := range g.msi {
		gsis = append(gsis, gsi)
	}
	slices.Sort(gsis)
	for _, gsi := range gsis {
		e = append(e, g.msi[gsi])
	}
	return e
}

// commit installs the table; mu must be held.
func (g *GSIRouter) commit() error {
	if err := g.vm.SetGSIRouting(g.entries()); err != nil {
		return fmt.Errorf("pci: GSI routing: %w", err)
	}
	return nil
}
