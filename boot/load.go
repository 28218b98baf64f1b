package boot

import (
	"bytes"
	"errors"
	"fmt"
)

// Errors Load can return, for errors.Is; the messages say more.
var (
	ErrNotKernel      = errors.New("kernel: not a bzImage or a PVH ELF")
	ErrTruncated      = errors.New("kernel: file is truncated")
	ErrOldProtocol    = errors.New("kernel: boot protocol older than 2.12")
	ErrNo64BitEntry   = errors.New("kernel: bzImage has no 64-bit entry point")
	ErrNoPVHNote      = errors.New("kernel: ELF has no XEN_ELFNOTE_PHYS32_ENTRY note (not a PVH kernel)")
	ErrBadHeader      = errors.New("kernel: malformed header")
	ErrOutsideRAM     = errors.New("kernel: segment outside RAM")
	ErrOverlap        = errors.New("kernel: segment overlaps the boot structures")
	ErrMemoryTooSmall = errors.New("memory too small for the kernel")
	ErrInitrdTooLarge = errors.New("initrd does not fit")
	ErrCmdlineTooLong = errors.New("cmdline too long")
)

// loadError carries a specific message and the sentinel it is an instance of.
type loadError struct {
	kind error
	err  error
}

func (e *loadError) Error() string   { return e.err.Error() }
func (e *loadError) Unwrap() []error { return []error{e.kind, e.err} }

// errorf returns an error reading as format says and matching kind.
func errorf(kind error, format string, args ...any) error {
	return &loadError{kind: kind, err: fmt.Errorf(format, args...)}
}

// Load writes kernel, initrd and cmdline, plus the boot structures the
// kernel's entry protocol needs, into mem, whose RAM is ram, and returns
// how to enter it. kernel is a bzImage (64-bit boot protocol, >= 2.12) or
// an ELF with a PVH entry note; initrd may be empty.
func Load(mem Memory, ram []Range, kernel []byte, initrd []byte, cmdline string) (*Entry, error) {
	mm, err := MemoryMap(ram)
	if err != nil {
		return nil, err
	}
	if len(cmdline)+1 > CmdlineMax {
		return nil, errorf(ErrCmdlineTooLong, "cmdline (%d bytes) is longer than the %d bytes reserved at %#x", len(cmdline), CmdlineMax-1, CmdlineAddr)
	}
	if bytes.IndexByte([]byte(cmdline), 0) >= 0 {
		return nil, fmt.Errorf("boot: cmdline contains a NUL byte")
	}
	switch {
	case len(kernel) >= hdrMagicOff+4 && string(kernel[hdrMagicOff:hdrMagicOff+4]) == hdrMagic:
		return loadBzImage(mem, ram, mm, kernel, initrd, cmdline)
	case bytes.HasPrefix(kernel, elfMagic):
		return loadPVH(mem, ram, mm, kernel, initrd, cmdline)
	}
	return nil, errorf(ErrNotKernel, "%v (no HdrS signature, no ELF magic)", ErrNotKernel)
}

// writeCmdline writes cmdline and its NUL at CmdlineAddr.
func writeCmdline(mem Memory, cmdline string) error {
	return write(mem, CmdlineAddr, append([]byte(cmdline), 0), "cmdline")
}

// placeInitrd copies initrd as high as possible below limit and above
// floor, page-aligned; it returns the address (0 for an empty initrd).
func placeInitrd(mem Memory, ram []Range, initrd []byte, floor, limit uint64) (uint64, error) {
	if len(initrd) == 0 {
		return 0, nil
	}
	addr, ok := placeHigh(ram, uint64(len(initrd)), floor, limit)
	if !ok {
		return 0, errorf(ErrInitrdTooLarge, "initrd (%d bytes) does not fit below %#x above the kernel's end %#x", len(initrd), limit, floor)
	}
	return addr, write(mem, addr, initrd, "initrd")
}
