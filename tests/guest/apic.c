/* xAPIC (MMIO at 0xfee00000) and IOAPIC access, all from CPL3. */
#include "guest.h"

#define LAPIC_ID        0x020
#define LAPIC_SVR       0x0f0
#define LAPIC_ICR_LO    0x300
#define LAPIC_ICR_HI    0x310
#define ICR_BUSY        (1u << 12)

uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE + reg); }
void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }

/* Software-enable the LAPIC with spurious vector 0xff. */
void lapic_enable(void)
{
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
}

/* Send an IPI; returns 0 if the delivery-status bit never cleared. */
int lapic_ipi(uint8_t apic, uint32_t icr_low)
{
	lapic_write(LAPIC_ICR_HI, (uint32_t)apic << 24);
	lapic_write(LAPIC_ICR_LO, icr_low);
	for (int i = 0; i < 10000; i++)
		if (!(lapic_read(LAPIC_ICR_LO) & ICR_BUSY))
			return 1;
	return 0;
}

/* From the LAPIC, not CPUID: see cpuid() in guest.h. */
uint8_t my_apic_id(void)
{
	return (uint8_t)(lapic_read(LAPIC_ID) >> 24);
}

static void ioapic_write(uint32_t base, uint8_t reg, uint32_t v)
{
	mmio_write32(base, reg);        /* IOREGSEL */
	mmio_write32(base + 0x10, v);   /* IOWIN */
}

/* Edge-triggered, active-high, fixed delivery to a physical APIC ID. */
void ioapic_route(uint32_t base, int pin, uint8_t vector, uint8_t dest, int masked)
{
	ioapic_write(base, (uint8_t)(0x11 + 2 * pin), (uint32_t)dest << 24);
	ioapic_write(base, (uint8_t)(0x10 + 2 * pin), vector | (masked ? 1u << 16 : 0));
}

void ioapic_for_gsi(uint32_t gsi, uint32_t *base, int *pin)
{
	struct mp_info mp;
	*base = IOAPIC_BASE;
	if (mp_parse(&mp) && mp.ioapic_addr)
		*base = mp.ioapic_addr;
	*pin = (int)gsi;
	if (gsi >= 24) {        /* QEMU microvm's second IOAPIC: GSI 24.. */
		*base = 0xfec10000;
		*pin = (int)gsi - 24;
	}
}
