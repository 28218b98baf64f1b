package acpi

// RSDP (ACPI 6.5 §5.2.5), revision 2: 20 bytes checksummed for ACPI 1.0
// readers, 36 with the extended checksum.
const rsdpSize = 36

func rsdp(rsdt, xsdt uint64) []byte {
	b := make([]byte, rsdpSize)
	copy(b[0:8], "RSD PTR ")
	copy(b[9:15], oemID)
	b[15] = 2
	le.PutUint32(b[16:], uint32(rsdt))
	le.PutUint32(b[20:], rsdpSize)
	le.PutUint64(b[24:], xsdt)
	b[8] = checksum(b[:20])
	b[32] = checksum(b)
	return b
}

// rsdt and xsdt list the other tables' addresses (32- and 64-bit).
func rsdt(addrs []uint64) []byte {
	var body []byte
	for _, a := range addrs {
		body = le.AppendUint32(body, uint32(a))
	}
	return table("RSDT", 1, "GOVMMRSD", body)
}

func xsdt(addrs []uint64) []byte {
	var body []byte
	for _, a := range addrs {
		body = le.AppendUint64(body, a)
	}
	return table("XSDT", 1, "GOVMMXSD", body)
}
