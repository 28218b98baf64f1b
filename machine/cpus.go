package machine

// VCPUThreads returns each running vCPU's OS thread id, by vCPU index
// (QMP's query-cpus-fast); 0 for a vCPU whose thread has ended.
func (m *Machine) VCPUThreads() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int, len(m.vcpus))
	for i, v := range m.vcpus {
		out[i] = int(v.tid.Load())
	}
	return out
}

// CPUs is the number of vCPUs the VM was configured with.
func (m *Machine) CPUs() int { return m.cfg.CPUs }
