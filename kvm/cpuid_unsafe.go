package kvm

import (
	"unsafe"
)

// cpuidBuffer lays out struct kvm_cpuid2 followed by its entries.
func cpuidBuffer(entries []CPUIDEntry, room int) []byte {
	es := int(unsafe.Sizeof(CPUIDEntry{}))
	buf := make([]byte, 8+room*es)
	*(*uint32)(unsafe.Pointer(&buf[0])) = uint32(room)
	for i, e := range entries {
		*(*CPUIDEntry)(unsafe.Pointer(&buf[8+i*es])) = e
	}
	return buf
}

func cpuidEntries(buf []byte) []CPUIDEntry {
	n := int(*(*uint32)(unsafe.Pointer(&buf[0])))
	es := int(unsafe.Sizeof(CPUIDEntry{}))
	out := make([]CPUIDEntry, n)
	for i := range out {
		out[i] = *(*CPUIDEntry)(unsafe.Pointer(&buf[8+i*es]))
	}
	return out
}

func getSupportedCPUID(fd, room int) ([]CPUIDEntry, error) {
	buf := cpuidBuffer(nil, room)
	if _, err := ioctl(fd, reqGetSupportedCPUID, bytesPtr(buf)); err != nil {
		return nil, err
	}
	return cpuidEntries(buf), nil
}

func setCPUID2(fd int, entries []CPUIDEntry) error {
	buf := cpuidBuffer(entries, len(entries))
	_, err := ioctl(fd, reqSetCPUID2, bytesPtr(buf))
	return err
}

// msrsBuffer lays out struct kvm_msrs followed by its entries.
func msrsBuffer(entries []MSREntry) []byte {
	es := int(unsafe.Sizeof(MSREntry{}))
	buf := make([]byte, 8+len(entries)*es)
	*(*uint32)(unsafe.Pointer(&buf[0])) = uint32(len(entries))
	for i, e := range entries {
		*(*MSREntry)(unsafe.Pointer(&buf[8+i*es])) = e
	}
	return buf
}

func msrsEntries(buf []byte, out []MSREntry) {
	es := int(unsafe.Sizeof(MSREntry{}))
	for i := range out {
		out[i] = *(*MSREntry)(unsafe.Pointer(&buf[8+i*es]))
	}
}

func routingBuffer(entries []RoutingEntry) []byte {
	es := int(unsafe.Sizeof(RoutingEntry{}))
	buf := make([]byte, 8+len(entries)*es)
	*(*uint32)(unsafe.Pointer(&buf[0])) = uint32(len(entries))
	for i, e := range entries {
		*(*RoutingEntry)(unsafe.Pointer(&buf[8+i*es])) = e
	}
	return buf
}
