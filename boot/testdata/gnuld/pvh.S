/*
 * A minimal PVH "kernel" linked by GNU ld with its default linker script,
 * as ./gen.sh does: the first PT_LOAD then holds only the ELF and program
 * headers and sits just below 1 MiB (with -z separate-code, ld's default on
 * x86-64), or holds the headers and .text together, straddling 1 MiB
 * (-z noseparate-code). It reports on port 0x500 the first word of its own
 * ELF header (through __ehdr_start), a .data word and a .bss word, then
 * halts.
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4			/* namesz */
	.long 4			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long _start

	.text
	.code32
	.globl _start
_start:
	movl $0x500, %edx
	movl __ehdr_start, %eax
	outl %eax, %dx
	movl data_word, %eax
	outl %eax, %dx
	movl bss_word, %eax
	outl %eax, %dx
	hlt
1:	jmp 1b

	.data
data_word:
	.long 0x12345678

	.bss
	.space 0x1000
bss_word:
	.space 0x1000
