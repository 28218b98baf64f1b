package nested

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"vmm/tests/initramfs"
)

// fetchBusybox returns Debian's static busybox, downloading the
// busybox-static package into dir (without installing it) the first
// time.
func fetchBusybox(dir string) (string, error) {
	bin := filepath.Join(dir, "root/bin/busybox")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	dl := filepath.Join(dir, "dl")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return "", err
	}
	// apt downloads as its _apt user where it can: let it write there.
	exec.Command("chown", "_apt", dl).Run()
	get := func() error {
		c := exec.Command("apt-get", "download", "-q", "busybox-static")
		c.Dir = dl
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get download busybox-static: %w\n%s", err, out)
		}
		return nil
	}
	if err := get(); err != nil {
		// A fresh machine may have no package lists yet.
		if out, uerr := exec.Command("apt-get", "update", "-q").CombinedOutput(); uerr != nil {
			return "", fmt.Errorf("%v; apt-get update: %v\n%s", err, uerr, out)
		}
		if err := get(); err != nil {
			return "", err
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "busybox-static_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("apt-get download busybox-static left no .deb in %s", dl)
	}
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], filepath.Join(dir, "root")).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %w\n%s", debs[0], err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("busybox-static has no /bin/busybox: %w", err)
	}
	return bin, nil
}

// writeInitramfs writes the outer machine's uncompressed newc initramfs:
// /init, /bin/busybox, the modules in /lib/modules and their load order
// in /modules.list. The init script is kept beside it as out.init.
func writeInitramfs(out, busybox, modDir string, modules []string) error {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	records := []cpio.Record{
		cpio.Directory("bin", 0o755),
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.Directory("lib", 0o755),
		cpio.Directory("lib/modules", 0o755),
		cpio.StaticRecord(bb, cpio.Info{Name: "bin/busybox", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord(l1Init, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord([]byte(strings.Join(modules, "\n")+"\n"), cpio.Info{Name: "modules.list", Mode: cpio.S_IFREG | 0o644}),
	}
	for _, m := range modules {
		b, err := os.ReadFile(filepath.Join(modDir, m+".ko"))
		if err != nil {
			return err
		}
		records = append(records, cpio.StaticRecord(b, cpio.Info{Name: "lib/modules/" + m + ".ko", Mode: cpio.S_IFREG | 0o644}))
	}
	if err := initramfs.Write(out, records); err != nil {
		return err
	}
	return os.WriteFile(out+".init", l1Init, 0o644)
}
