/* Shared declarations for the test guest. */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "layout.h"

#define NORETURN __attribute__((noreturn))

/* Exit statuses (port 0xf4; QEMU's isa-debug-exit reports 2*status+1). */
#define EXIT_EXCEPTION  0xee    /* CPU exception or bad PVH magic */
#define EXIT_USAGE      0xef    /* unknown command or bad argument */
#define EXIT_TIMER      0xed    /* timer interrupts did not arrive */
#define EXIT_SMP        0xec    /* not every AP came online */

/* struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h). */
struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;          /* version >= 1 */
	uint32_t memmap_entries, reserved;
};
struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

/* Port and memory-mapped I/O; all fine at CPL3 with IOPL=3. */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint16_t mmio_read16(uintptr_t a) { return *(volatile uint16_t *)a; }
static inline void mmio_write16(uintptr_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline uint8_t mmio_read8(uintptr_t a) { return *(volatile uint8_t *)a; }
static inline void mmio_write8(uintptr_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline uint64_t rdtsc(void) { uint32_t lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((uint64_t)hi << 32) | lo; }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
/*
 * CPUID as the VMM configured it. It goes through CPL0 because a PVM host
 * (AMD, no CPUID faulting) executes cpuid at CPL3 natively and returns
 * the host's values, including the host CPU's APIC ID.
 */
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("int3" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(SYS_CPUID), "D"(leaf), "S"(sub) : "memory");
}
static inline uint64_t syscall1(uint64_t nr, uint64_t arg)
{
	__asm__ volatile("int3" : "+a"(nr), "+D"(arg) :: "rcx", "memory", "cc");
	return nr;
}

/* cli/sti #GP at CPL3 on a PVM host, so IF is set by a CPL0 service. */
static inline void irq_enable(void) { syscall1(SYS_IRQ_ENABLE, 0); }
static inline void irq_disable(void) { syscall1(SYS_IRQ_DISABLE, 0); }

/* entry32.S / entry64.S / trampoline.S */
extern uint64_t pvh_start_info;
extern uint64_t gdt[];
extern char isr_stubs[], syscall_entry[], spurious_entry[];
extern char tramp_start[], tramp_end[];

/* idt.c */
extern volatile uint64_t irq_counts[256];
extern uint8_t apic_to_cpu[256];
void idt_init(void);

/* uart.c */
void uart_init(void);
void uart_write(const char *s, size_t n);

/* printf.c: %d %i %u %x %X %s %c %p %%, l/ll, width, 0-pad, '-' */
int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
int snprintf(char *buf, size_t n, const char *fmt, ...);
void printf(const char *fmt, ...);         /* serialised across CPUs */
void printf_unlocked(const char *fmt, ...);/* for the CPL0 exception path */

/* lib.c */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
int parse_u64(const char *s, uint64_t *out);   /* decimal or 0x hex; 0 on error */
NORETURN void guest_exit(unsigned status);

/* cmdline.c */
int split(char *s, char sep, char **out, int max);

/* mptable.c */
struct mp_info {
	int ncpus;
	uint8_t apic_id[MAX_CPUS];
	int bsp;                /* index into apic_id, -1 if not flagged */
	uint32_t lapic_addr;
	uint32_t ioapic_addr;   /* 0 if none listed */
};
int mp_parse(struct mp_info *mp);   /* 1 if an MP table was found */

/* apic.c */
#define LAPIC_BASE  0xfee00000u
#define IOAPIC_BASE 0xfec00000u
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
void lapic_enable(void);
int lapic_ipi(uint8_t apic, uint32_t icr_low);
void ioapic_route(uint32_t base, int pin, uint8_t vector, uint8_t dest, int masked);
uint8_t my_apic_id(void);
/* The IOAPIC (MP table's, or microvm's second one for GSI >= 24) and pin of a GSI. */
void ioapic_for_gsi(uint32_t gsi, uint32_t *base, int *pin);

/* main.c */
extern uint64_t boot_tsc;

/* time.c */
uint64_t tsc_khz(void);
const char *tsc_source(void);
void udelay(uint64_t us);
uint64_t tsc_deadline_ms(uint64_t ms);

/* smp.c, timer.c: commands */
int cmd_smp(int argc, char **argv);
int cmd_timer(int argc, char **argv);
extern int cpus_hint;       /* cpus=N from the command line, 0 if absent */

/* vs.c: virtio-serial commands (virtio_console.c over virtio_mmio.c / virtio_pci.c) */
int cmd_vs(int argc, char **argv);
int cmd_vs_ports(int argc, char **argv);
int cmd_vs_open(int argc, char **argv);
int cmd_vs_close(int argc, char **argv);
int cmd_vs_emerg(int argc, char **argv);
int cmd_vs_timeout(int argc, char **argv);
int cmd_vs_irq(int argc, char **argv);
int cmd_vs_msix(int argc, char **argv);
int cmd_vs_put(int argc, char **argv);
NORETURN void ap_main(unsigned cpu);

#endif
