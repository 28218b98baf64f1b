/*
 * 64-bit CPL0 code: per-CPU stack, IDT, TSS, then iretq to CPL3 with IOPL=3
 * (port I/O and cli/sti work there). Also the tiny interrupt stubs; every
 * instruction here is emulated on a PVM host, so keep them short.
 */
#include "layout.h"

	.text
	.code64
/* In: %esi = 0 (BSP) or 1 (AP). */
	.globl entry64
entry64:
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	xorl %r12d, %r12d		/* BSP is cpu 0 */
	testl %esi, %esi
	jz 1f
	movl $0xfee00020, %eax		/* AP: cpu index from the LAPIC ID */
	movl (%rax), %ebx
	shrl $24, %ebx
	movzbl apic_to_cpu(%rbx), %r12d
	cmpl $MAX_CPUS, %r12d
	jae park
1:	leal 1(%r12), %eax		/* rsp = top of kstacks[cpu] */
	shll $KSTACK_SHIFT, %eax
	leaq kstacks(%rax), %rsp
	lidt idtr
	movl %r12d, %edi
	call tss_setup
	movl %r12d, %eax
	shll $4, %eax
	addl $SEL_TSS0, %eax
	ltr %ax
	leal 1(%r12), %eax		/* user rsp = top of ustacks[cpu] - 8 */
	shll $USTACK_SHIFT, %eax
	leaq ustacks-8(%rax), %rax
	pushq $SEL_UDATA
	pushq %rax
	pushq $RFLAGS_USER
	pushq $SEL_UCODE
	pushq $user_entry
	movl %r12d, %edi		/* user_entry(cpu) */
	iretq

	.globl park
park:
	cli
1:	hlt
	jmp 1b

/*
 * One 16-byte stub per vector; idt_init() points gate v at
 * isr_stubs + 16*v (except the syscall and spurious vectors).
 * Vectors 0-31 are exceptions, the rest count-and-EOI interrupts.
 */
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.balign ISR_STUB_SIZE
	.if vec < 32
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	pushq $vec			/* CPU pushed an error code */
	.else
	pushq $0
	pushq $vec
	.endif
	jmp exc_common
	.else
	pushq %rax
	movl $vec, %eax
	jmp irq_common
	.endif
	.set vec, vec + 1
	.endr

exc_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	andq $-16, %rsp
	call exception_handler		/* prints and exits; never returns */
	jmp park

/* Count the interrupt, EOI the LAPIC, return. */
irq_common:
	incq irq_counts(,%rax,8)
	movl $0xfee000b0, %eax
	movl $0, (%rax)
	popq %rax
	iretq

	.globl spurious_entry
spurious_entry:				/* spurious LAPIC vector: no EOI */
	iretq

/* int3 from CPL3 (VEC_SYSCALL): %rax = service, %rdi = argument; clobbers %rcx. */
	.globl syscall_entry
syscall_entry:
	cmpq $SYS_SPIN, %rax
	je 1f
	cmpq $SYS_PARK, %rax
	je park
	cmpq $SYS_IRQ_ENABLE, %rax
	je 4f
	cmpq $SYS_IRQ_DISABLE, %rax
	je 5f
	cmpq $SYS_CPUID, %rax
	je 6f
	cmpq $SYS_UNEMULATED, %rax
	je 7f
	cmpq $SYS_TRIPLE_FAULT, %rax
	je 8f
	iretq
8:	lidt null_idtr			/* no gates: every exception escalates */
	ud2
7:	int3				/* ends the VM on an emulating host (vmm's fatal-exit test) */
	iretq
6:	movl %edi, %eax			/* at CPL3 a PVM host runs cpuid natively */
	movl %esi, %ecx
	cpuid
	iretq
4:	orq $0x200, 16(%rsp)		/* IF in the saved RFLAGS */
	iretq
5:	andq $~0x200, 16(%rsp)
	iretq
1:	movq %rdi, %rcx
	testq %rcx, %rcx
	jz 3f
2:	decq %rcx
	jnz 2b
3:	iretq

	.data
	.balign 8
	.word 0, 0, 0
null_idtr:
	.word 0
	.quad 0
	.globl idtr
	.balign 8
	.word 0, 0, 0
idtr:
	.word 256 * 16 - 1
	.quad idt
