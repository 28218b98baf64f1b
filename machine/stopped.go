package machine

// WaitStopped waits until the VM has ended and no vCPU runs guest code
// any more. Guest memory and the devices stay as they are until Close,
// so the host can still write out what the guest handed its devices
// before it stopped (DESIGN.md), with no vCPU adding to it meanwhile.
func (m *Machine) WaitStopped() {
	<-m.done
	m.mu.Lock()
	vcpus := append([]*vcpu(nil), m.vcpus...)
	m.mu.Unlock()
	for _, v := range vcpus {
		<-v.exited
	}
}
