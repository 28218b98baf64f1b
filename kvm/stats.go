package kvm

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): a file with
// a header, one descriptor per statistic and the values, read with
// pread. Only the cumulative counters and instant values are summed
// here; histograms are skipped.

var reqGetStatsFD = io(0xce)

// Stats reads the vCPU's statistics by name ("exits", "io_exits", …).
// It reports an error when this host's KVM has no binary stats.
func (c *VCPU) Stats() (map[string]uint64, error) {
	fd, err := ioctl(c.fd, reqGetStatsFD, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_STATS_FD vCPU %d: %w", c.id, err)
	}
	defer unix.Close(int(fd))
	return readStats(int(fd))
}

// Stats reads the VM's statistics by name.
func (vm *VM) Stats() (map[string]uint64, error) {
	fd, err := ioctl(vm.fd, reqGetStatsFD, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_STATS_FD VM: %w", err)
	}
	defer unix.Close(int(fd))
	return readStats(int(fd))
}

// Stats descriptor types (kvm_stats_desc.flags & KVM_STATS_TYPE_MASK).
const (
	statsTypeCumulative = 0
	statsTypeInstant    = 1
	statsTypePeak       = 2
	statsTypeMask       = 0xf
)

func readStats(fd int) (map[string]uint64, error) {
	var hdr [24]byte
	if _, err := unix.Pread(fd, hdr[:], 0); err != nil {
		return nil, fmt.Errorf("KVM stats header: %w", err)
	}
	le := binary.LittleEndian
	nameSize := le.Uint32(hdr[4:])
	numDesc := le.Uint32(hdr[8:])
	descOff := le.Uint32(hdr[16:])
	dataOff := le.Uint32(hdr[20:])
	descSize := 16 + int(nameSize)
	if numDesc > 4096 || nameSize > 1024 {
		return nil, fmt.Errorf("KVM stats header: %d descriptors of name size %d", numDesc, nameSize)
	}
	desc := make([]byte, int(numDesc)*descSize)
	if _, err := unix.Pread(fd, desc, int64(descOff)); err != nil {
		return nil, fmt.Errorf("KVM stats descriptors: %w", err)
	}
	var dataLen uint32
	for i := 0; i < int(numDesc); i++ {
		d := desc[i*descSize:]
		if end := le.Uint32(d[8:]) + 8*uint32(le.Uint16(d[6:])); end > dataLen {
			dataLen = end
		}
	}
	data := make([]byte, dataLen)
	if dataLen > 0 {
		if _, err := unix.Pread(fd, data, int64(dataOff)); err != nil {
			return nil, fmt.Errorf("KVM stats data: %w", err)
		}
	}
	stats := map[string]uint64{}
	for i := 0; i < int(numDesc); i++ {
		d := desc[i*descSize : (i+1)*descSize]
		flags, size, off := le.Uint32(d), le.Uint16(d[6:]), le.Uint32(d[8:])
		if size != 1 || flags&statsTypeMask > statsTypePeak {
			continue // histograms
		}
		name := d[16:]
		for j, c := range name {
			if c == 0 {
				name = name[:j]
				break
			}
		}
		stats[string(name)] = le.Uint64(data[off:])
	}
	return stats, nil
}
