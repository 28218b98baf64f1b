/*
 * AP start-up code. smp.c copies tramp_start..tramp_end to TRAMPOLINE_BASE
 * and sends SIPI vector TRAMPOLINE_BASE >> 12. The AP starts in real mode
 * with CS base = TRAMPOLINE_BASE, so data is addressed relative to
 * tramp_start through %cs. It loads the shared GDT, enters protected mode
 * and joins the BSP's path at long_mode_enter (entry32.S).
 */
#include "layout.h"

	.text
	.code16
	.globl tramp_start, tramp_end
tramp_start:
	cli
	cld
	lgdtl %cs:(tramp_gdtr - tramp_start)
	movl %cr0, %eax
	orl $1, %eax			/* CR0.PE */
	movl %eax, %cr0
	ljmpl $SEL_KCODE32, $ap_entry32
	.balign 4
tramp_gdtr:
	.word GDT_SIZE - 1
	.long gdt
tramp_end:

	.code32
ap_entry32:
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $1, %esi			/* %esi = 1: application processor */
	jmp long_mode_enter
