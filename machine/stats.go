package machine

import "errors"

// KVMStats sums KVM's binary statistics over the vCPUs ("exits",
// "io_exits", "mmio_exits", "halt_exits", …). Call it after Run returns
// and before Close; an error says this host's KVM has no binary stats.
func (m *Machine) KVMStats() (map[string]uint64, error) {
	m.mu.Lock()
	vcpus := m.vcpus
	m.mu.Unlock()
	if len(vcpus) == 0 {
		return nil, errors.New("KVM stats: no vCPUs")
	}
	sum := map[string]uint64{}
	for _, v := range vcpus {
		s, err := v.cpu.Stats()
		if err != nil {
			return nil, err
		}
		for k, x := range s {
			sum[k] += x
		}
	}
	return sum, nil
}
