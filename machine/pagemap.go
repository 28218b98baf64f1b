package machine

import (
	"encoding/binary"
	"os"

	"vmm/snapshot"
)

// Pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
const (
	pagemapPresent = 1 << 63
	pagemapSwapped = 1 << 62
)

// untouchedPages reports, for each 4 KiB page of b (a private anonymous
// mapping), whether the process never wrote it: neither present nor
// swapped in /proc/self/pagemap, so it reads as zero. (A page only read
// maps the shared zero page and shows as present: it is read, and found
// zero, as before.) nil when the pagemap cannot be read.
func untouchedPages(b []byte) []bool {
	if len(b) == 0 || len(b)%snapshot.PageSize != 0 || os.Getpagesize() != snapshot.PageSize {
		return nil
	}
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil
	}
	defer f.Close()
	n := len(b) / snapshot.PageSize
	first := int64(hostAddr(b) / snapshot.PageSize)
	out := make([]bool, n)
	buf := make([]byte, 8*min(n, 1<<16))
	for i := 0; i < n; {
		k := min(n-i, len(buf)/8)
		if _, err := f.ReadAt(buf[:8*k], (first+int64(i))*8); err != nil {
			return nil
		}
		for j := range k {
			e := binary.NativeEndian.Uint64(buf[8*j:])
			out[i+j] = e&(pagemapPresent|pagemapSwapped) == 0
		}
		i += k
	}
	return out
}
