package acpi

// MADT (ACPI 6.5 §5.2.12): one enabled local APIC per vCPU (APIC id =
// vCPU index, as the MP table says), the IOAPIC with GSI base 0, and
// ISA IRQ 0 (the PIT) overriding to GSI 2 as on a PC.
const (
	madtRevision   = 5
	madtPCATCompat = 1 // there are 8259s (KVM's in-kernel PIC)
	madtLAPIC      = 0
	madtIOAPIC     = 1
	madtOverride   = 2
	lapicEnabled   = 1
)

func madt(c Config) []byte {
	body := le.AppendUint32(nil, c.LAPICAddr)
	body = le.AppendUint32(body, madtPCATCompat)
	for i := range c.CPUs {
		body = append(body, madtLAPIC, 8, byte(i), byte(i))
		body = le.AppendUint32(body, lapicEnabled)
	}
	body = append(body, madtIOAPIC, 12, c.IOAPICID, 0)
	body = le.AppendUint32(body, c.IOAPICAddr)
	body = le.AppendUint32(body, 0)
	body = append(body, madtOverride, 10, 0, 0) // ISA bus, IRQ 0
	body = le.AppendUint32(body, 2)
	body = le.AppendUint16(body, 0) // conforming polarity and trigger
	return table("APIC", madtRevision, "GOVMMAPC", body)
}
