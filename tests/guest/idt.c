/*
 * IDT, TSS and exception reporting. The IDT is plain memory, so it is
 * filled at CPL3 (natively, cheap) right after entering user mode; only
 * tss_setup() and exception_handler() run at CPL0.
 */
#include "guest.h"

struct gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
};

struct tss {
	uint32_t rsvd0;
	uint64_t rsp[3];
	uint64_t rsvd1;
	uint64_t ist[7];
	uint64_t rsvd2;
	uint16_t rsvd3, iomap_base;
	uint8_t iomap[65536 / 8 + 1];   /* all zero: every port allowed */
} __attribute__((packed));

/* Saved by exc_common in entry64.S. */
struct exc_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, err;
	uint64_t rip, cs, rflags, rsp, ss;
};

struct gate idt[256] __attribute__((aligned(16)));
static struct tss tss[MAX_CPUS] __attribute__((aligned(128)));
uint8_t kstacks[MAX_CPUS][KSTACK_SIZE] __attribute__((aligned(4096)));
uint8_t ustacks[MAX_CPUS][USTACK_SIZE] __attribute__((aligned(4096)));
volatile uint64_t irq_counts[256];
uint8_t apic_to_cpu[256];   /* APIC ID -> cpu index, filled by smp.c */

static void set_gate(int v, void *handler, int dpl)
{
	uintptr_t a = (uintptr_t)handler;
	idt[v] = (struct gate){
		.off_lo = (uint16_t)a,
		.sel = SEL_KCODE,
		.type = (uint8_t)(0x8e | (dpl << 5)),  /* present, 64-bit interrupt gate */
		.off_mid = (uint16_t)(a >> 16),
		.off_hi = (uint32_t)(a >> 32),
	};
}

/* CPL3. */
void idt_init(void)
{
	for (int v = 0; v < 256; v++)
		set_gate(v, isr_stubs + v * ISR_STUB_SIZE, 0);
	set_gate(VEC_SYSCALL, syscall_entry, 3);
	set_gate(VEC_SPURIOUS, spurious_entry, 0);
}

/* CPL0, called from entry64.S before ltr: this CPU's TSS and descriptor. */
void tss_setup(unsigned cpu)
{
	struct tss *t = &tss[cpu];
	uint64_t base = (uintptr_t)t;
	t->rsp[0] = (uintptr_t)kstacks[cpu] + KSTACK_SIZE;
	/* The bitmap matters where IOPL=3 does not stick (PVM, see layout.h). */
	t->iomap_base = offsetof(struct tss, iomap);
	gdt[SEL_TSS0 / 8 + 2 * cpu] = (sizeof(struct tss) - 1) |
		((base & 0xffffff) << 16) | (0x89ull << 40) |
		((base >> 24) & 0xff) << 56;
	gdt[SEL_TSS0 / 8 + 2 * cpu + 1] = base >> 32;
}

/* CPL0, from exc_common. No lock: the interrupted code may hold it. */
NORETURN void exception_handler(struct exc_frame *f)
{
	printf_unlocked("guest: exception %lu rip=0x%lx err=0x%lx", f->vector, f->rip, f->err);
	if (f->vector == 14) {
		uint64_t cr2;
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
		printf_unlocked(" cr2=0x%lx", cr2);
	}
	printf_unlocked(" cs=0x%lx rflags=0x%lx rsp=0x%lx\n", f->cs, f->rflags, f->rsp);
	outb(EXIT_PORT, EXIT_EXCEPTION);
	for (;;)        /* not guest_exit(): its int3 would fail emulation at CPL0 */
		__asm__ volatile("cli; hlt");
}
