package pci

import (
	"fmt"
	"sync"
)

// Slots on bus 0; function 0 of each (no multi-function devices).
const Slots = 32

// Host bridge identity: Q35's MCH (8086:29c0), class host bridge.
const (
	HostBridgeVendor = 0x8086
	HostBridgeDevice = 0x29c0
	ClassHostBridge  = 0x060000
)

// Root is bus 0 behind the host bridge, which is 00:00.0. Config
// accesses arrive through ConfigIO and ECAM from vCPU threads.
type Root struct {
	mu sync.RWMutex
	// fns holds function 0 of each slot; guarded by mu.
	fns [Slots]Function
}

// NewRoot returns bus 0 with only the host bridge.
func NewRoot() *Root {
	r := &Root{}
	r.fns[0] = NewConfigSpace(Header{VendorID: HostBridgeVendor, DeviceID: HostBridgeDevice, Class: ClassHostBridge})
	return r
}

// Add puts f at slot (device number) 1-31.
func (r *Root) Add(slot int, f Function) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slot <= 0 || slot >= Slots {
		return fmt.Errorf("pci: slot %d: not in 1-%d", slot, Slots-1)
	}
	if r.fns[slot] != nil {
		return fmt.Errorf("pci: slot %d is taken", slot)
	}
	r.fns[slot] = f
	return nil
}

// AddNext puts f in the lowest free slot and returns it.
func (r *Root) AddNext(f Function) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := 1; s < Slots; s++ {
		if r.fns[s] == nil {
			r.fns[s] = f
			return s, nil
		}
	}
	return 0, fmt.Errorf("pci: bus 0 is full")
}

func (r *Root) function(bus, dev, fn int) Function {
	if bus != 0 || fn != 0 || dev >= Slots {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.fns[dev]
}

// access performs one config access at reg of bus:dev.fn; an absent
// function reads all ones and ignores writes. Accesses that are not
// naturally aligned 1, 2 or 4 bytes go byte by byte.
func (r *Root) access(bus, dev, fn int, reg uint64, data []byte, write bool) {
	f := r.function(bus, dev, fn)
	if f == nil || reg >= ConfigSize || uint64(len(data)) > ConfigSize-reg {
		if !write {
			for i := range data {
				data[i] = 0xff
			}
		}
		return
	}
	n := len(data)
	if (n == 1 || n == 2 || n == 4) && reg%uint64(n) == 0 {
		if write {
			f.WriteConfig(reg, data)
		} else {
			f.ReadConfig(reg, data)
		}
		return
	}
	for i := range data {
		if write {
			f.WriteConfig(reg+uint64(i), data[i:i+1])
		} else {
			f.ReadConfig(reg+uint64(i), data[i:i+1])
		}
	}
}
