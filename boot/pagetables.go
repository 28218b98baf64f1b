package boot

import "encoding/binary"

// Page table entry bits.
const (
	ptePresent  = 1 << 0
	pteWritable = 1 << 1
	ptePageSize = 1 << 7 // 2 MiB page in a PD entry
)

// IdentityMapSize is how much the boot page tables identity-map: the 64-bit
// boot protocol requires the kernel, boot_params, cmdline and initrd to be
// mapped, and all of those live below 4 GiB.
const IdentityMapSize = 4 << 30

// writePageTables writes a PML4 at PML4Addr, a PDPT at PDPTAddr and four PDs
// from PDAddr that identity-map [0, 4 GiB) with 2 MiB pages.
func writePageTables(mem Memory) error {
	const nPD = IdentityMapSize >> 30
	b := make([]byte, (2+nPD)*pageSize) // PML4, PDPT, PDs: contiguous
	binary.LittleEndian.PutUint64(b[0:], PDPTAddr|ptePresent|pteWritable)
	for i := range uint64(nPD) {
		binary.LittleEndian.PutUint64(b[pageSize+8*i:], (PDAddr+i*pageSize)|ptePresent|pteWritable)
		for j := range uint64(512) {
			pa := i<<30 | j<<21
			binary.LittleEndian.PutUint64(b[(2+i)*pageSize+8*j:], pa|ptePresent|pteWritable|ptePageSize)
		}
	}
	return write(mem, PML4Addr, b, "page tables")
}
