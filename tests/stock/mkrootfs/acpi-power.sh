#!/bin/sh
# /etc/acpi/power: what busybox acpid runs (see /etc/acpid.conf) when the
# ACPI power button is pressed (KEY_POWER, "button/power PWRF"; QMP's
# system_powerdown presses it): the orderly way down. It stops qemu-ga
# and waits for it, syncs, and powers off (/sbin/poweroff, vmm-off.sh).
# acpid sends its children's output to its log: the lines go to the
# console instead.
exec </dev/null >/dev/console 2>&1
echo "vmm-shell: power button: shutting down"
# qemu-ga is the init's child, which nothing reaps while the init waits
# for its shell: gone means a zombie (state Z) or no process.
pid=$(pidof qemu-ga)
if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
	polls=0 state=R
	while [ "$state" != Z ] && [ "$polls" -lt 100 ]; do
		state=Z
		read -r _ _ state _ 2>/dev/null <"/proc/$pid/stat" || break
		[ "$state" = Z ] && break
		polls=$((polls + 1))
		read -r -t 0.1 _ <>/run/delay
	done
	if [ "$state" = Z ] || [ ! -e "/proc/$pid" ]; then
		echo "vmm-shell: qemu-ga stopped"
	else
		echo "vmm-shell: qemu-ga still running after 10 s"
	fi
fi
sync
echo "vmm-shell: power button: powering off"
exec /sbin/poweroff
