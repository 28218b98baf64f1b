/*
 * CPL3 main: runs the commands from the PVH command line, separated by ';'
 * and split into words. To add a command (e.g. a virtio driver test), write
 * a cmd_* function and add it to commands[].
 */
#include "guest.h"

#define MAX_CMDS  64
#define MAX_ARGS  32

static char cmdline[4096];

static uint64_t arg_num(const char *cmd, const char *s, uint64_t max)
{
	uint64_t v;
	if (!s || !parse_u64(s, &v) || v > max) {
		printf("guest: %s: bad number \"%s\"\n", cmd, s ? s : "");
		guest_exit(EXIT_USAGE);
	}
	return v;
}

static int cmd_echo(int argc, char **argv)
{
	char line[512];
	size_t len = 0;
	for (int i = 1; i < argc; i++)
		len += snprintf(line + len, sizeof line - len, i > 1 ? " %s" : "%s", argv[i]);
	printf("%s\n", line[0] && argc > 1 ? line : "");
	return 0;
}

static int cmd_exit(int argc, char **argv)
{
	guest_exit((unsigned)arg_num("exit", argc > 1 ? argv[1] : NULL, 255));
}

/* Unassigned MMIO and port: reads must return something, writes must not crash. */
static int cmd_probe(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const uintptr_t mmio = 0xd0000000;
	const uint16_t port = 0x2f0;
	uint32_t m = mmio_read32(mmio);
	uint8_t p = inb(port);
	mmio_write32(mmio, 0x12345678);
	outb(port, 0x5a);
	printf("guest: probe mmio=0x%08x pio=0x%02x\n", m, p);
	return 0;
}

/* N iterations of dec+jnz at CPL3 (native). */
static int cmd_loop(int argc, char **argv)
{
	uint64_t n = arg_num("loop", argc > 1 ? argv[1] : NULL, ~0ull), c = n;
	uint64_t t0 = rdtsc();
	if (c)
		__asm__ volatile("1: dec %0; jnz 1b" : "+r"(c) :: "cc");
	uint64_t t1 = rdtsc();
	printf("guest: loop %lu done cycles=%lu\n", n, t1 - t0);
	return 0;
}

/* The same N iterations of dec+jnz, but at CPL0 behind int3 (see layout.h). */
static int cmd_cpl0probe(int argc, char **argv)
{
	uint64_t n = arg_num("cpl0probe", argc > 1 ? argv[1] : NULL, ~0ull);
	uint64_t t0 = rdtsc();
	syscall1(SYS_SPIN, n);
	uint64_t t1 = rdtsc();
	printf("guest: cpl0probe %lu cycles=%lu\n", n, t1 - t0);
	return 0;
}

/* `reset`: pulse the reset line through the i8042, as Linux's reboot=k. */
static int cmd_reset(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	outb(0x64, 0xfe);
	printf("guest: reset: still running after the i8042 reset\n");
	return 0;
}

/* `poweroff`: what Linux's ACPI poweroff does on vmm's hardware-reduced
 * FADT: SLP_TYP=5 (\_S5) | SLP_EN into the sleep control register. */
static int cmd_poweroff(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	outb(0x3c0, (5 << 2) | (1 << 5));
	printf("guest: poweroff: still running\n");
	return 0;
}

/* `pvpanic`: what Linux's pvpanic driver does: read the supported
 * events from port 0x505, then report a panic (bit 0) there. */
static int cmd_pvpanic(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("guest: pvpanic events %u\n", (unsigned)inb(0x505));
	outb(0x505, 1);
	printf("guest: pvpanic: still running\n");
	return 0;
}

/* `triplefault`: an exception with no IDT, the way a PC resets by accident. */
static int cmd_triplefault(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	syscall1(SYS_TRIPLE_FAULT, 0);
	printf("guest: triplefault: still running\n");
	return 0;
}

/* `serial N`: read N bytes of host input from COM1 (polled) and print them. */
static int cmd_serial(int argc, char **argv)
{
	uint64_t n = arg_num("serial", argc > 1 ? argv[1] : NULL, 256);
	char buf[257];
	for (uint64_t i = 0; i < n; i++) {
		while (!(inb(0x3f8 + 5) & 1))
			cpu_relax();
		buf[i] = (char)inb(0x3f8);
	}
	buf[n] = 0;
	printf("guest: serial got \"%s\"\n", buf);
	return 0;
}

/* `unemulated`: run an instruction a CPL0-emulating host cannot emulate,
 * so the VMM's report of a fatal exit can be tested. */
static int cmd_unemulated(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	syscall1(SYS_UNEMULATED, 0);
	printf("guest: unemulated: the host ran int3 at CPL0 natively\n");
	return 0;
}

static int cmd_cpuid(int argc, char **argv)
{
	uint32_t leaf = (uint32_t)arg_num("cpuid", argc > 1 ? argv[1] : NULL, 0xffffffff);
	uint32_t sub = argc > 2 ? (uint32_t)arg_num("cpuid", argv[2], 0xffffffff) : 0;
	uint32_t r[4];
	cpuid(leaf, sub, r);
	printf("guest: cpuid 0x%x eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x\n",
	       leaf, r[0], r[1], r[2], r[3]);
	return 0;
}

static int cmd_tsc(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	uint64_t khz = tsc_khz();
	printf("guest: tsc %lu kHz (%s)\n", khz, tsc_source());
	return 0;
}

static int cmd_memmap(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const struct hvm_start_info *si = (const void *)(uintptr_t)pvh_start_info;
	if (si->version < 1 || !si->memmap_paddr) {
		printf("guest: memmap none\n");
		return 0;
	}
	const struct hvm_memmap_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries; i++)
		printf("guest: memmap 0x%016lx-0x%016lx type %u\n",
		       e[i].addr, e[i].addr + e[i].size - 1, e[i].type);
	return 0;
}

/* `cmdline`: the command line as the loader passed it. */
static int cmd_cmdline(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const struct hvm_start_info *si = (const void *)(uintptr_t)pvh_start_info;
	const char *s = si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "";
	printf("guest: cmdline \"");
	for (size_t n = strlen(s); n; ) {      /* printf truncates long lines */
		char chunk[128];
		size_t k = n < sizeof chunk - 1 ? n : sizeof chunk - 1;
		memcpy(chunk, s, k);
		chunk[k] = 0;
		printf("%s", chunk);
		s += k;
		n -= k;
	}
	printf("\"\n");
	return 0;
}

static int cmd_cpus(int argc, char **argv)  /* cpus=N: parsed up front */
{
	(void)argc;
	(void)argv;
	return 0;
}

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "echo", cmd_echo },
	{ "exit", cmd_exit },
	{ "smp", cmd_smp },
	{ "timer", cmd_timer },
	{ "probe", cmd_probe },
	{ "loop", cmd_loop },
	{ "cpl0probe", cmd_cpl0probe },
	{ "cpuid", cmd_cpuid },
	{ "unemulated", cmd_unemulated },
	{ "reset", cmd_reset },
	{ "poweroff", cmd_poweroff },
	{ "triplefault", cmd_triplefault },
	{ "pvpanic", cmd_pvpanic },
	{ "serial", cmd_serial },
	{ "tsc", cmd_tsc },
	{ "memmap", cmd_memmap },
	{ "cmdline", cmd_cmdline },
	{ "vs", cmd_vs },
	{ "vs-ports", cmd_vs_ports },
	{ "vs-open", cmd_vs_open },
	{ "vs-close", cmd_vs_close },
	{ "vs-emerg", cmd_vs_emerg },
	{ "vs-timeout", cmd_vs_timeout },
	{ "vs-irq", cmd_vs_irq },
	{ "vs-msix", cmd_vs_msix },
	{ "vs-put", cmd_vs_put },
};

static void run(int argc, char **argv)
{
	/* virtio_mmio.device= words (QEMU microvm appends them) are for the drivers. */
	int n = 0;
	for (int i = 0; i < argc; i++)
		if (strncmp(argv[i], "virtio_mmio.", 12))
			argv[n++] = argv[i];
	argv[n] = NULL;
	argc = n;
	if (!argc)
		return;
	if (!strncmp(argv[0], "cpus=", 5)) {
		cmd_cpus(argc, argv);
		return;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[0], commands[i].name)) {
			commands[i].fn(argc, argv);
			return;
		}
	printf("guest: unknown command \"%s\"\n", argv[0]);
	guest_exit(EXIT_USAGE);
}

/* A cpus=N word anywhere on the line is the SMP fallback without MP table. */
static void find_cpus_hint(const char *s)
{
	for (; *s; s++) {
		if (strncmp(s, "cpus=", 5) || (s != cmdline && s[-1] != ' ' && s[-1] != ';'))
			continue;
		uint64_t v = 0;
		for (s += 5; *s >= '0' && *s <= '9'; s++)
			v = v * 10 + (uint64_t)(*s - '0');
		cpus_hint = (int)(v > MAX_CPUS ? MAX_CPUS : v);
		return;
	}
}

uint64_t boot_tsc;      /* rdtsc at the first CPL3 instruction of the BSP */

static NORETURN void bsp_main(void)
{
	boot_tsc = rdtsc();
	idt_init();     /* plain memory writes, ~1 us at CPL3; before any fault can happen */
	/* The FIFO reset comes before the first line: a host that types after
	 * seeing it must not have its input cleared. */
	uart_init();
	printf("guest: hello\n");

	const struct hvm_start_info *si = (const void *)(uintptr_t)pvh_start_info;
	if (si->cmdline_paddr) {
		const char *src = (const char *)(uintptr_t)si->cmdline_paddr;
		size_t n = 0;
		while (n < sizeof cmdline - 1 && src[n])
			n++;
		memcpy(cmdline, src, n);
		cmdline[n] = 0;
	}
	find_cpus_hint(cmdline);

	static char *cmds[MAX_CMDS];
	int ncmds = split(cmdline, ';', cmds, MAX_CMDS);
	for (int i = 0; i < ncmds; i++) {
		char *argv[MAX_ARGS + 1];
		int argc = split(cmds[i], ' ', argv, MAX_ARGS);
		argv[argc] = NULL;
		if (argc)
			run(argc, argv);
	}
	printf("guest: done\n");
	guest_exit(0);
}

/* entry64.S iretq's here at CPL3 on every CPU. */
NORETURN void user_entry(unsigned cpu)
{
	if (cpu == 0)
		bsp_main();
	ap_main(cpu);
}
