/* Constants shared by the assembly and C parts of the test guest. */
#ifndef LAYOUT_H
#define LAYOUT_H

#define MAX_CPUS        32
#define KSTACK_SHIFT    13                  /* 8 KiB CPL0 stack per CPU */
#define KSTACK_SIZE     (1 << KSTACK_SHIFT)
#define USTACK_SHIFT    14                  /* 16 KiB CPL3 stack per CPU */
#define USTACK_SIZE     (1 << USTACK_SHIFT)

/* GDT selectors. */
#define SEL_KCODE       0x08                /* 64-bit kernel code */
#define SEL_KDATA       0x10
#define SEL_KCODE32     0x18                /* 32-bit code for the AP trampoline */
#define SEL_UDATA       0x23                /* 0x20 | RPL3 */
#define SEL_UCODE       0x2b                /* 0x28 | RPL3, 64-bit */
#define SEL_TSS0        0x30                /* 16-byte TSS descriptor per CPU */
#define GDT_SIZE        (0x30 + 16 * MAX_CPUS)

#define TRAMPOLINE_BASE 0x8000              /* AP start page; SIPI vector 0x08 */
#define ISR_STUB_SIZE   16                  /* bytes per IDT stub in entry64.S */

/* Interrupt vectors. */
#define VEC_LAPIC_TIMER 0x40
#define VEC_PIT         0x41
/*
 * Kernel services are entered with int3 (vector 3, the only DPL3 gate):
 * on a PVM host `int $n` from CPL3 raises #UD, while #BP is reflected
 * through our IDT like any exception. int3 is never used as a breakpoint.
 */
#define VEC_SYSCALL     3
#define VEC_SPURIOUS    0xff

/* int3 services: %rax = number, %rdi = argument. */
#define SYS_SPIN        0                   /* CPL0 loop of %rdi dec+jnz */
#define SYS_PARK        1                   /* cli; hlt forever at CPL0 */
#define SYS_IRQ_ENABLE  2                   /* set IF in the caller's RFLAGS */
#define SYS_IRQ_DISABLE 3                   /* clear IF in the caller's RFLAGS */
#define SYS_CPUID       4                   /* cpuid(%edi, %esi) at CPL0 -> eax..edx */
#define SYS_UNEMULATED  5                   /* int3 at CPL0: the host cannot emulate it */
#define SYS_TRIPLE_FAULT 6                  /* empty IDT, then ud2: #UD -> #DF -> shutdown */

#define PVH_MAGIC       0x336ec578
#define EXIT_PORT       0xf4
/*
 * IOPL=3, IF=0. A PVM host drops IOPL (and forces IF=1) for CPL3, so port
 * I/O is also allowed through an all-zero TSS I/O bitmap, and IF is changed
 * with SYS_IRQ_* rather than cli/sti (which #GP there).
 */
#define RFLAGS_USER     0x3002

#endif
