package initramfs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

func TestWriteReadsBack(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sub", "x.cpio")
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord([]byte("#!/bin/sh\n"), cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	if err := Write(out, recs); err != nil {
		t.Fatalf("Write: %v", err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := cpio.ReadAllRecords(cpio.Newc.Reader(f))
	if err != nil {
		t.Fatalf("reading %s back: %v", out, err)
	}
	if len(got) != 3 || got[2].Name != "init" || got[1].Ino == got[2].Ino {
		t.Errorf("read back %d records (%v); want dev, dev/console, init with distinct inodes", len(got), got)
	}
}

func TestReadModule(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.ko"), []byte("ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadModule(dir, "a"); err != nil || !bytes.Equal(b, []byte("ELF")) {
		t.Errorf("ReadModule(a) = %q, %v; want ELF", b, err)
	}
	if _, err := ReadModule(dir, "missing"); !os.IsNotExist(err) {
		t.Errorf("ReadModule(missing) error = %v; want not-exist", err)
	}
	if _, err := ReadModule(dir, "../a"); err == nil {
		t.Errorf("ReadModule(../a) succeeded; want a bad-name error")
	}
}
