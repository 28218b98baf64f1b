/*
 * `smp`: start every application processor with INIT-SIPI-SIPI. CPUs come
 * from the MP table, else from cpus=N (APIC IDs 0..N-1). The APs run the
 * real-mode trampoline, reach CPL3 in ap_main, report and park in hlt.
 */
#include "guest.h"

int cpus_hint;
static volatile int cpus_online;

#define ICR_INIT    0x4500      /* INIT, level assert */
#define ICR_SIPI    0x4600      /* start-up */
#define SMP_TIMEOUT_MS 3000

void ap_main(unsigned cpu)
{
	printf("guest: cpu %u online (apic %u)\n", cpu, my_apic_id());
	__atomic_fetch_add(&cpus_online, 1, __ATOMIC_RELEASE);
	syscall1(SYS_PARK, 0);  /* hlt at CPL0: frees the host CPU */
	for (;;)
		cpu_relax();
}

int cmd_smp(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct mp_info mp;
	uint8_t ids[MAX_CPUS];
	int n = 0;
	uint8_t bsp = my_apic_id();

	if (mp_parse(&mp) && mp.ncpus > 0) {
		n = mp.ncpus;
		memcpy(ids, mp.apic_id, sizeof ids);
	} else if (cpus_hint > 0) {
		n = cpus_hint > MAX_CPUS ? MAX_CPUS : cpus_hint;
		for (int i = 0; i < n; i++)
			ids[i] = (uint8_t)i;
	}

	/* cpu 0 is the BSP; number the others in table order. */
	memset(apic_to_cpu, 0xff, sizeof apic_to_cpu);
	apic_to_cpu[bsp] = 0;
	uint8_t aps[MAX_CPUS];
	int naps = 0;
	for (int i = 0; i < n; i++) {
		if (ids[i] == bsp || apic_to_cpu[ids[i]] != 0xff)
			continue;
		apic_to_cpu[ids[i]] = (uint8_t)(naps + 1);
		aps[naps++] = ids[i];
	}
	cpus_online = 1;
	if (naps) {
		memcpy((void *)TRAMPOLINE_BASE, tramp_start, (size_t)(tramp_end - tramp_start));
		lapic_enable();
		for (int i = 0; i < naps; i++)
			lapic_ipi(aps[i], ICR_INIT);
		udelay(10000);
		for (int pass = 0; pass < 2; pass++) {
			for (int i = 0; i < naps; i++)
				lapic_ipi(aps[i], ICR_SIPI | (TRAMPOLINE_BASE >> 12));
			udelay(200);
		}
		uint64_t end = tsc_deadline_ms(SMP_TIMEOUT_MS);
		while (cpus_online < naps + 1 && rdtsc() < end)
			cpu_relax();
	}
	int online = __atomic_load_n(&cpus_online, __ATOMIC_ACQUIRE);
	if (online != naps + 1) {
		printf("guest: smp FAILED %d of %d cpus online\n", online, naps + 1);
		guest_exit(EXIT_SMP);
	}
	printf("guest: smp %d cpus online\n", online);
	return 0;
}
