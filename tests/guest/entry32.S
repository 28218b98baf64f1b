/*
 * PVH entry: the loader starts us in 32-bit protected mode, paging off,
 * %ebx = physical address of struct hvm_start_info. Everything here runs at
 * CPL0 and is emulated instruction by instruction on a PVM host, so it does
 * the bare minimum: switch to long mode with static page tables and jump to
 * entry64.S. The AP trampoline joins at long_mode_enter.
 */
#include "layout.h"

/* XEN_ELFNOTE_PHYS32_ENTRY: lets QEMU and our VMM find the 32-bit entry. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* namesz */
	.long 4				/* descsz */
	.long 18			/* type: XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_entry

/* Zeros right after the note, outside PT_NOTE: QEMU reads the 4-byte
 * descriptor of a 64-bit ELF as 8 bytes. */
	.section .notepad, "a", @progbits
	.long 0

	.section .text.entry, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	cmpl $PVH_MAGIC, (%ebx)
	jne bad_magic
	movl %ebx, pvh_start_info
	lgdt gdtr
	xorl %esi, %esi			/* %esi = 0: bootstrap processor */

/* In: %esi = 0 (BSP) or 1 (AP), our GDT loaded. */
	.globl long_mode_enter
long_mode_enter:
	movl %cr4, %eax
	orl $0x20, %eax			/* CR4.PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx		/* EFER */
	rdmsr
	orl $0x100, %eax		/* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax		/* CR0.PG | CR0.PE */
	movl %eax, %cr0
	ljmp $SEL_KCODE, $entry64

bad_magic:
	movb $0xee, %al
	outb %al, $EXIT_PORT
1:	hlt
	jmp 1b

	.section .data.boot, "aw"
	.globl pvh_start_info
	.balign 8
pvh_start_info:
	.quad 0

/*
 * GDT. The TSS descriptors are filled per CPU by tss_setup() (idt.c).
 * Accessed bits are preset so the CPU never writes descriptors back.
 */
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00af9b000000ffff	/* 0x08 kernel code, 64-bit */
	.quad 0x00cf93000000ffff	/* 0x10 kernel data */
	.quad 0x00cf9b000000ffff	/* 0x18 kernel code, 32-bit */
	.quad 0x00cff3000000ffff	/* 0x20 user data, DPL3 */
	.quad 0x00affb000000ffff	/* 0x28 user code, 64-bit, DPL3 */
	.fill 2 * MAX_CPUS, 8, 0	/* 0x30 TSS descriptors */
	.globl gdtr
	.balign 8
	.word 0, 0, 0			/* align the base field */
gdtr:
	.word GDT_SIZE - 1
	.quad gdt

/*
 * Identity map of 0..4 GiB with 2 MiB pages, built at assembly time so no
 * CPL0 loop has to fill it. U/S is set everywhere: all test code runs at
 * CPL3 and touches its own image, low memory, the LAPIC/IOAPIC and MMIO.
 * 3..4 GiB (MMIO, LAPIC, IOAPIC) is uncached (PCD|PWT).
 */
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + 0x7		/* P|RW|US */
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0007, pd + 0x1007, pd + 0x2007, pd + 0x3007
	.fill 508, 8, 0
pd:
	.set addr, 0
	.rept 1536
	.quad addr | 0x87		/* P|RW|US|PS */
	.set addr, addr + 0x200000
	.endr
	.rept 512
	.quad addr | 0x9f		/* P|RW|US|PWT|PCD|PS */
	.set addr, addr + 0x200000
	.endr
