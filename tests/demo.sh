#!/bin/sh
# tests/demo.sh: what `make demo` runs, and what TestDemo (tests/demo_test.go)
# runs unchanged through a pty. It boots Linux under vmm with a busybox
# shell on this terminal (COM1 on stdio; Ctrl-A x quits) and a
# virtio-serial port named org.vmm.demo on a unix socket, and first
# prints how to talk to that port.
#
# The kernel: where this host's KVM runs guest kernel code natively,
# Debian's cloud kernel (build/debian-cloud/bzImage) with the shell
# initramfs build/stock/shell-cloud.cpio; where it emulates guest kernel
# mode (our hosts, see the README's host notes) a stock kernel would take
# many minutes to boot, so the Linux test kernel (build/linux/vmlinux)
# with build/stock/shell-test.cpio. The choice is the tests' CPL0 check
# (tests/stock_test.go cpl0Emulated): the test guest times a loop at CPL0
# against the same loop at CPL3.
#
# Environment (the Makefile sets the first three):
#   VMM          the vmm binary (build/vmm)
#   BUILD        the build folder with linux/, stock/, debian-cloud/ (build)
#   GUEST        the test guest, for the CPL0 check (tests/guest/build/guest.elf)
#   DEMO_KERNEL  auto (default), test or stock
#   DEMO_SOCK    the port's socket (BUILD/demo.sock)
set -eu

VMM=${VMM:-build/vmm}
BUILD=${BUILD:-build}
GUEST=${GUEST:-tests/guest/build/guest.elf}
kernel=${DEMO_KERNEL:-auto}
sock=${DEMO_SOCK:-$BUILD/demo.sock}
port=org.vmm.demo

# cpl0_ratio prints how many times slower the test guest's loop runs at
# CPL0 than at CPL3 (about 1 under hardware virtualization, hundreds
# where KVM emulates guest kernel mode).
cpl0_ratio() {
	"$VMM" run -kernel "$GUEST" -append "loop 100000; cpl0probe 100000" 2>/dev/null |
		awk '/^guest: loop 100000 /{sub(/.*cycles=/, ""); l=$0}
		     /^guest: cpl0probe 100000 /{sub(/.*cycles=/, ""); c=$0}
		     END{if (l > 0 && c > 0) printf "%d\n", c / l; else print "unknown"}'
}

why=
case $kernel in
auto)
	ratio=$(cpl0_ratio)
	case $ratio in
	unknown)
		kernel=test why="the CPL0 check printed nothing" ;;
	*)
		if [ "$ratio" -gt 20 ]; then
			kernel=test why="this host's KVM emulates guest kernel mode: code at CPL0 runs ${ratio}x slower than at CPL3"
		else
			kernel=stock why="this host's KVM runs guest kernel code natively"
		fi ;;
	esac ;;
test | stock) why="DEMO_KERNEL=$kernel" ;;
*)
	echo "demo: DEMO_KERNEL=$kernel: want auto, test or stock" >&2
	exit 2 ;;
esac

if [ "$kernel" = stock ]; then
	set -- -kernel "$BUILD/debian-cloud/bzImage" -initrd "$BUILD/stock/shell-cloud.cpio" \
		-m 512M -smp 2 -append "console=ttyS0 quiet" -device virtio-serial-pci
	what="Debian's cloud kernel ($BUILD/debian-cloud/bzImage)"
	slow="a few seconds"
else
	# The words and -cpu of tests/linux_test.go (linuxCmdline, linuxCPU):
	# see tests/guest/linux/README.md for why each is there. One vCPU, as
	# TestShell boots it: where guest kernel mode is emulated, the boot
	# takes minutes on a busy 2-core host already.
	set -- -kernel "$BUILD/linux/vmlinux" -initrd "$BUILD/stock/shell-test.cpio" \
		-m 256M -cpu host,kvm-pv-ipi=off,kvm-pv-sched-yield=off \
		-append "console=ttyS0 quiet noxsave clearcpuid=151,308,297,580,141 reboot=t rodata=off retain_initrd" \
		-device virtio-serial
	what="the Linux test kernel ($BUILD/linux/vmlinux)"
	slow="about 15 s here, minutes on a busy host"
fi
for f in "$VMM" "$2" "$4"; do
	if [ ! -e "$f" ]; then
		echo "demo: $f is missing: run make demo (it builds everything first)" >&2
		exit 1
	fi
done

rm -f "$sock"
cat <<EOF
vmm demo: $what with a busybox shell on this terminal
  ($why).
  The prompt comes after the boot, $slow. Ctrl-A x quits vmm,
  Ctrl-A h lists the keys; Ctrl-C goes to the guest.

  A virtio-serial port named $port is on the unix socket $sock.
  From another terminal on this host:
    host:  socat - UNIX-CONNECT:$sock
  and in the guest's shell (the init links the port by name, as udev would):
    guest: cat /dev/virtio-ports/$port
    guest: echo hi > /dev/virtio-ports/$port
  What you type into socat comes out of cat; what echo writes comes out of socat.

EOF
exec "$VMM" run "$@" \
	-chardev "socket,id=demo,path=$sock,server=on,wait=off" \
	-device "virtserialport,chardev=demo,name=$port"
