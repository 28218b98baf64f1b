//go:build linux

package main

// outb writes val to I/O port port (`outb %al, %dx`). The caller needs I/O
// privilege: iopl(3) first. Implemented in outb_amd64.s.
//
//go:noescape
func outb(port uint16, val uint8)
