#!/bin/sh
# /sbin/shutdown for qemu-ga's guest-shutdown, which runs
# `shutdown [-h] -P|-H|-r +0 MESSAGE`: power off (-P, or -h alone), halt
# (-H) or reboot (-r), now, whatever the time argument says.
mode=poweroff
for a; do
	case $a in
	-r) mode=reboot ;;
	-H) mode=halt ;;
	esac
done
exec /sbin/vmm-off "$mode"
