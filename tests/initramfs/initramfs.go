// Package initramfs writes the uncompressed newc archives our guests
// boot from (the Linux test kernel's Go init, the stock kernels'
// userland, the nested rig's outer machine), and reads the kernel
// modules they carry. Uncompressed on purpose: a kernel's decompressor
// runs at CPL0, which our hosts emulate instruction by instruction.
package initramfs

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// Write stores records as a newc archive at out, atomically (a
// temporary file renamed), with distinct inodes (no hard links) and
// reproducible times and owners.
func Write(out string, records []cpio.Record) error {
	for i := range records {
		records[i].Ino = uint64(i + 1)
		records[i].NLink = 1
	}
	cpio.MakeAllReproducible(records)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".initramfs-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriter(f)
	w := cpio.Newc.Writer(bw)
	err = cpio.WriteRecords(w, records)
	if err == nil {
		err = cpio.WriteTrailer(w)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return os.Rename(f.Name(), out)
}

// ReadModule returns the bytes of dir/name.ko, or of name.ko.xz or
// name.ko.zst decompressed (by the xz or zstd command); an error that
// satisfies os.IsNotExist when none is there.
func ReadModule(dir, name string) ([]byte, error) {
	if name == "" || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("bad module name %q", name)
	}
	base := filepath.Join(dir, name+".ko")
	if b, err := os.ReadFile(base); err == nil || !os.IsNotExist(err) {
		return b, err
	}
	for _, c := range []struct{ ext, cmd string }{{".xz", "xz"}, {".zst", "zstd"}} {
		if _, err := os.Stat(base + c.ext); err != nil {
			continue
		}
		b, err := exec.Command(c.cmd, "-dc", base+c.ext).Output()
		if err != nil {
			return nil, fmt.Errorf("%s -dc %s: %w", c.cmd, base+c.ext, err)
		}
		return b, nil
	}
	return nil, &os.PathError{Op: "module " + name, Path: base + "{,.xz,.zst}", Err: os.ErrNotExist}
}
