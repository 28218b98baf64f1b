package acpi

// MCFG (PCI Firmware 3.0 §4.1.2): one ECAM allocation for segment 0.
func mcfg(p *PCI) []byte {
	body := make([]byte, 8) // reserved
	body = le.AppendUint64(body, p.ECAMBase)
	body = le.AppendUint16(body, 0)
	body = append(body, 0, p.LastBus)
	body = le.AppendUint32(body, 0)
	return table("MCFG", 1, "GOVMMMCF", body)
}
