// Package kvm is a thin, typed layer over the /dev/kvm ioctls: one
// function per ioctl, no policy. Callers decide what a VM looks like.
package kvm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// APIVersion is the only KVM API version that has ever existed.
const APIVersion = 12

// System is an open /dev/kvm.
type System struct {
	fd int
}

// Open opens /dev/kvm and checks its API version.
func Open() (*System, error) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/kvm: %w", err)
	}
	s := &System{fd: fd}
	v, err := s.APIVersion()
	if err != nil {
		s.Close()
		return nil, err
	}
	if v != APIVersion {
		s.Close()
		return nil, fmt.Errorf("/dev/kvm: API version %d, want %d", v, APIVersion)
	}
	return s, nil
}

// Available reports whether /dev/kvm can be opened; tests skip without it.
func Available() error {
	s, err := Open()
	if err != nil {
		return err
	}
	return s.Close()
}

// Close closes /dev/kvm.
func (s *System) Close() error { return unix.Close(s.fd) }

// APIVersion returns KVM_GET_API_VERSION.
func (s *System) APIVersion() (int, error) {
	r, err := ioctl(s.fd, reqGetAPIVersion, 0)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	return int(r), nil
}

// CheckExtension returns KVM_CHECK_EXTENSION for capability c (0 when absent).
func (s *System) CheckExtension(c int) (int, error) {
	return checkExtension(s.fd, c)
}

func checkExtension(fd, c int) (int, error) {
	r, err := ioctl(fd, reqCheckExtension, uintptr(c))
	if err != nil {
		return 0, fmt.Errorf("KVM_CHECK_EXTENSION(%d): %w", c, err)
	}
	return int(r), nil
}

// VCPUMmapSize returns the size of the kvm_run area to mmap per vCPU.
func (s *System) VCPUMmapSize() (int, error) {
	r, err := ioctl(s.fd, reqGetVCPUMmapSize, 0)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	return int(r), nil
}

// MaxVCPUs returns the largest vCPU count KVM allows in one VM.
func (s *System) MaxVCPUs() (int, error) {
	n, err := s.CheckExtension(CapMaxVCPUs)
	if err == nil && n > 0 {
		return n, nil
	}
	n, err = s.CheckExtension(CapNrVCPUs)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		n = 4 // the documented default when the capability is absent
	}
	return n, nil
}

// SupportedCPUID returns KVM_GET_SUPPORTED_CPUID, growing the buffer
// until the kernel stops answering E2BIG.
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	for n := 64; n <= 4096; n *= 2 {
		entries, err := getSupportedCPUID(s.fd, n)
		if errors.Is(err, unix.E2BIG) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
		}
		return entries, nil
	}
	return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: more than 4096 entries")
}

// CreateVM returns a new VM (machine type 0).
func (s *System) CreateVM() (*VM, error) {
	r, err := ioctl(s.fd, reqCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	mmapSize, err := s.VCPUMmapSize()
	if err != nil {
		unix.Close(int(r))
		return nil, err
	}
	return &VM{fd: int(r), runSize: mmapSize}, nil
}
