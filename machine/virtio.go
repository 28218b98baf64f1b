package machine

import (
	"fmt"
	"strings"

	"vmm/devices/virtio"
)

// virtio-mmio placement: 4 KiB windows at the top of the MMIO hole below
// the IOAPIC, where QEMU's microvm puts them too, each on a free ISA
// interrupt (edge-triggered through the IOAPIC, as the MP table says).
const virtioMMIOBase = 0xFEB0_0000

var virtioGSIs = []uint32{5, 6, 7, 9, 10, 11, 12, 14, 15}

// addVirtioMMIO puts each virtio device behind a virtio-mmio transport
// and returns the command line with a virtio_mmio.device= word for each.
func (m *Machine) addVirtioMMIO(cmdline string) (string, error) {
	devs := m.cfg.VirtioMMIO
	if len(devs) > len(virtioGSIs) {
		return "", fmt.Errorf("%d virtio-mmio devices: at most %d fit", len(devs), len(virtioGSIs))
	}
	words := []string{cmdline}
	for i, dev := range devs {
		base := virtioMMIOBase + uint64(i)*0x1000
		t, err := virtio.NewMMIO(dev, m.mem, m.vm, base, virtioGSIs[i])
		if err != nil {
			return "", fmt.Errorf("virtio-mmio device %d: %w", i, err)
		}
		m.closers = append(m.closers, t)
		if err := m.mmio.Add(base, t.Size(), fmt.Sprintf("virtio-mmio.%d", i), t); err != nil {
			return "", err
		}
		words = append(words, t.CmdlineArg())
	}
	return strings.TrimSpace(strings.Join(words, " ")), nil
}
