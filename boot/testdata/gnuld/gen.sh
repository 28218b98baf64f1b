#!/bin/sh
# Regenerates the GNU ld-linked PVH test ELFs from pvh.S (binutils).
set -eu
cd "$(dirname "$0")"
as --64 -o pvh.o pvh.S
ld -m elf_x86_64 -s -Ttext 0x100000 -z separate-code -o separate-code.elf pvh.o
ld -m elf_x86_64 -s -Ttext 0x100000 -z noseparate-code -o noseparate-code.elf pvh.o
rm -f pvh.o
