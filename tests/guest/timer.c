/*
 * `timer`: LAPIC timer interrupts (periodic, vector 0x40).
 * `timer pit`: PIT channel 0 through the IOAPIC (vector 0x41). ISA IRQ0 is
 * IOAPIC pin 2 with QEMU's override and pin 0 with KVM's default routing,
 * so both pins are programmed. The handler (entry64.S irq_common) counts
 * into irq_counts[] and EOIs.
 */
#include "guest.h"

#define LVT_TIMER   0x320
#define TIMER_INIT  0x380
#define TIMER_DIV   0x3e0
#define LVT_LINT0   0x350
#define LVT_MASKED  (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define WANT        10
#define TIMEOUT_MS  3000

static uint64_t wait_irqs(int vec)
{
	uint64_t start = irq_counts[vec];
	uint64_t end = tsc_deadline_ms(TIMEOUT_MS);
	irq_enable();
	while (irq_counts[vec] - start < WANT && rdtsc() < end)
		cpu_relax();
	irq_disable();
	return irq_counts[vec] - start;
}

static int lapic_timer(void)
{
	lapic_enable();
	lapic_write(TIMER_DIV, 0x3);            /* divide by 16 */
	lapic_write(LVT_TIMER, LVT_PERIODIC | VEC_LAPIC_TIMER);
	lapic_write(TIMER_INIT, 62500);         /* 1 ms at KVM's 1 GHz APIC bus */
	uint64_t got = wait_irqs(VEC_LAPIC_TIMER);
	lapic_write(TIMER_INIT, 0);
	lapic_write(LVT_TIMER, LVT_MASKED);
	if (got < WANT) {
		printf("guest: timer FAILED (%lu interrupts)\n", got);
		guest_exit(EXIT_TIMER);
	}
	printf("guest: timer ok %d interrupts\n", WANT);
	return 0;
}

static int pit_timer(void)
{
	struct mp_info mp;
	uint32_t ioapic = IOAPIC_BASE;
	if (mp_parse(&mp) && mp.ioapic_addr)
		ioapic = mp.ioapic_addr;
	uint8_t bsp = my_apic_id();

	lapic_enable();
	tsc_khz();                              /* calibrates with ch0: do it first */
	outb(0x21, 0xff);                       /* mask both 8259s */
	outb(0xa1, 0xff);
	lapic_write(LVT_LINT0, LVT_MASKED);
	ioapic_route(ioapic, 0, VEC_PIT, bsp, 0);
	ioapic_route(ioapic, 2, VEC_PIT, bsp, 0);
	outb(0x43, 0x34);                       /* ch0, lo/hi, mode 2 */
	outb(0x40, 1193 & 0xff);                /* ~1 kHz */
	outb(0x40, 1193 >> 8);
	uint64_t got = wait_irqs(VEC_PIT);
	ioapic_route(ioapic, 0, VEC_PIT, bsp, 1);
	ioapic_route(ioapic, 2, VEC_PIT, bsp, 1);
	outb(0x43, 0x30);                       /* ch0 mode 0, never reloaded */
	outb(0x40, 0);
	outb(0x40, 0);
	if (got < WANT) {
		printf("guest: timer pit FAILED (%lu interrupts)\n", got);
		guest_exit(EXIT_TIMER);
	}
	printf("guest: timer pit ok %d interrupts\n", WANT);
	return 0;
}

int cmd_timer(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "pit"))
		return pit_timer();
	if (argc > 1) {
		printf("guest: timer: unknown mode \"%s\"\n", argv[1]);
		guest_exit(EXIT_USAGE);
	}
	return lapic_timer();
}
