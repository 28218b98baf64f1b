#!/bin/sh
# /sbin/vmm-off MODE, also installed as /sbin/poweroff, /sbin/reboot and
# /sbin/halt (MODE is then the name): ends the VM at once, as busybox's
# `MODE -f` does (there is no init to ask; options are ignored). A kernel
# with no power-off method (no ACPI, like the Linux test kernel) would
# only halt on poweroff, so there it reboots instead: with reboot=t that
# is a triple fault, on which vmm (and QEMU with -no-reboot) ends the VM
# with status 0.
mode=${0##*/}
[ "$mode" = vmm-off ] && mode=${1:-poweroff}
echo "vmm-shell: $mode" >/dev/console
if [ "$mode" = poweroff ] && [ ! -d /sys/firmware/acpi ]; then
	echo "vmm-shell: no ACPI: powering off by reboot" >/dev/console
	mode=reboot
fi
sync
exec busybox "$mode" -f
