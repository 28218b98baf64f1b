package acpi

import "fmt"

// Table is one generated table at its guest address.
type Table struct {
	Signature string // "RSD PTR " for the RSDP
	Addr      uint64
	Data      []byte
}

// Tables is what Build produced.
type Tables struct {
	RSDP uint64  // for boot_params.acpi_rsdp_addr or PVH rsdp_paddr
	List []Table // RSDP first, then in address order
}

// Get returns the table with signature sig.
func (t *Tables) Get(sig string) (Table, bool) {
	for _, tb := range t.List {
		if tb.Signature == sig {
			return tb, true
		}
	}
	return Table{}, false
}

// align16 rounds a up to 16 bytes.
func align16(a uint64) uint64 { return (a + 15) &^ 15 }

// Build lays out RSDP, RSDT, XSDT, FADT, MADT, MCFG (with PCI) and
// DSDT in [Base, Base+Size), RSDP first on a 16-byte boundary (so a
// BIOS-style search of 0xE0000-0xFFFFF finds it when Base is there),
// and writes them to c.Memory unless it is nil.
func Build(c Config) (*Tables, error) {
	c, err := c.defaults()
	if err != nil {
		return nil, err
	}
	d, err := dsdt(c)
	if err != nil {
		return nil, err
	}
	// Leaf tables first: their addresses go into FADT and XSDT.
	leaves := []Table{{Signature: "DSDT", Data: d}, {Signature: "APIC", Data: madt(c)}}
	if c.PCI != nil {
		leaves = append(leaves, Table{Signature: "MCFG", Data: mcfg(c.PCI)})
	}
	addr := align16(c.Base + rsdpSize)
	nTables := len(leaves) // FADT, MADT, MCFG listed; DSDT is not
	rsdtAddr := addr
	addr = align16(addr + headerSize + 4*uint64(nTables))
	xsdtAddr := addr
	addr = align16(addr + headerSize + 8*uint64(nTables))
	fadtAddr := addr
	addr = align16(addr + fadtSize)
	for i := range leaves {
		leaves[i].Addr = addr
		addr = align16(addr + uint64(len(leaves[i].Data)))
	}
	if addr > c.Base+c.Size {
		return nil, fmt.Errorf("acpi: tables need %#x bytes; region %#x+%#x is too small", addr-c.Base, c.Base, c.Size)
	}
	listed := []uint64{fadtAddr}
	for _, l := range leaves[1:] {
		listed = append(listed, l.Addr)
	}
	t := &Tables{RSDP: c.Base, List: []Table{
		{"RSD PTR ", c.Base, rsdp(rsdtAddr, xsdtAddr)},
		{"RSDT", rsdtAddr, rsdt(listed)},
		{"XSDT", xsdtAddr, xsdt(listed)},
		{"FACP", fadtAddr, fadt(leaves[0].Addr, c)},
	}}
	t.List = append(t.List, leaves...)
	if c.Memory == nil {
		return t, nil
	}
	for _, tb := range t.List {
		b, err := c.Memory.Slice(tb.Addr, uint64(len(tb.Data)))
		if err != nil {
			return nil, fmt.Errorf("acpi: writing %s at %#x: %w", tb.Signature, tb.Addr, err)
		}
		copy(b, tb.Data)
	}
	return t, nil
}
