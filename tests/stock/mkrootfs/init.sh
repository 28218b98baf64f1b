#!/bin/sh
# /init of the tests/stock shell initramfs (busybox sh). Lines meant for
# tests start "vmm-shell: ". It loads the modules of /etc/vmm-modules,
# links /dev/virtio-ports/NAME (udev's job, done by hand), starts qemu-ga
# on org.qemu.guest_agent.0 if that port exists, and acpid if there is an
# input device (the ACPI power button powers off), then either runs
# vmm.run=CMD from the kernel command line and powers off, or keeps an
# interactive shell on the console (ttyS0 or hvc0: whatever /dev/console is).
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root TERM=${TERM:-linux}
export PS1='vmm-shell:\w# '
umask 022
cd /

say() { echo "vmm-shell: $*"; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The kernel may have mounted devtmpfs itself (then /dev/null is there).
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev

# With console=hvc0 alone the kernel had no console to give init ("unable
# to open an initial console"): hvc0 exists only once virtio_console has
# met its device, after init started (the driver built in) or once it is
# loaded below. Until then the lines go to /run/vmm-shell.early.
noconsole=
if [ ! -e /proc/self/fd/1 ]; then
	noconsole=1
	exec </dev/null >/run/vmm-shell.early 2>&1
fi

# Drivers, in dependency order; one line each.
while read -r m; do
	[ -n "$m" ] || continue
	if insmod "/lib/modules/$m.ko"; then
		say "module $m loaded"
	else
		say "module $m: insmod failed"
	fi
done </etc/vmm-modules

# No console yet: open /dev/console once there is one (polled 0.1 s apart,
# for up to 5 minutes: the handshake is slow where guest kernel mode is
# emulated), and replay the early lines on it.
if [ -n "$noconsole" ]; then
	polls=0
	until (: </dev/console) 2>/dev/null || [ "$polls" -ge 3000 ]; do
		polls=$((polls + 1))
		read -r -t 0.1 _ <>/run/delay
	done
	exec </dev/console >/dev/console 2>&1
	while read -r line; do echo "$line"; done </run/vmm-shell.early
	say "console opened after the modules"
fi

# Ports appear (and get their names) asynchronously after the driver
# probes: if there is a virtio console device (id 3), wait until the list
# of ports and names has been the same for three polls 0.1 s apart. (Only
# builtins here: each fork+exec costs a lot on a kernel whose kernel mode
# is emulated. read -t on the FIFO /run/delay is a sleep without a fork.)
scan() {
	now=
	for p in /sys/class/virtio-ports/*; do
		[ -e "$p/name" ] || continue
		name=
		read -r name <"$p/name"
		now="$now ${p##*/}=$name"
	done
}
consoles=0
for d in /sys/bus/virtio/devices/*; do
	id=
	[ -r "$d/device" ] && read -r id <"$d/device"
	[ "$id" = 0x0003 ] && consoles=$((consoles + 1))
done
if [ "$consoles" -gt 0 ]; then
	prev= same=0 polls=0
	while [ "$same" -lt 3 ] && [ "$polls" -lt 100 ]; do
		scan
		if [ -n "$now" ] && [ "$now" = "$prev" ]; then same=$((same + 1)); else same=0; fi
		prev=$now polls=$((polls + 1))
		read -r -t 0.1 _ <>/run/delay
	done
	[ -n "$prev" ] && mkdir -p /dev/virtio-ports
	for pn in $prev; do
		port=${pn%%=*} name=${pn#*=}
		say "port $port name=$name"
		[ -n "$name" ] && ln -sf "../$port" "/dev/virtio-ports/$name"
	done
fi

# The guest agent: background, state and log under /run, not the console.
ga=/dev/virtio-ports/org.qemu.guest_agent.0
if [ -e "$ga" ] && ! command -v qemu-ga >/dev/null; then
	say "no qemu-ga in this image (shell-test-agent.cpio has it); $ga left alone"
elif [ -e "$ga" ]; then
	qemu-ga -m virtio-serial -p "$ga" -f /run/qemu-ga.pid -t /run/qemu-ga \
		-l /run/qemu-ga.log </dev/null >>/run/qemu-ga.log 2>&1 &
	say "qemu-ga started pid=$! on $ga (log /run/qemu-ga.log)"
fi

# The ACPI power button (QMP's system_powerdown presses it): busybox
# acpid reads KEY_POWER from the input devices (evdev and button, from
# /etc/vmm-modules) and runs /etc/acpi/power (acpi-power.sh), the way
# down. acpid writes its pid file once it has opened its devices: the
# ready line waits for that, so a press right after it is not lost.
if [ -e /dev/input/event0 ]; then
	acpid -f -l /run/acpid.log -p /run/acpid.pid </dev/null >/dev/null 2>&1 &
	polls=0
	until [ -e /run/acpid.pid ] || [ "$polls" -ge 300 ]; do
		polls=$((polls + 1))
		read -r -t 0.1 _ <>/run/delay
	done
	if [ -e /run/acpid.pid ]; then
		say "acpid started pid=$! (power button: /etc/acpi/power)"
	else
		say "acpid did not start (log /run/acpid.log)"
	fi
fi

# CPUs online, counted from the ranges in sys (e.g. 0-1,3).
read -r online </sys/devices/system/cpu/online
cpus=0 ifs=$IFS IFS=,
for r in $online; do
	cpus=$((cpus + ${r#*-} - ${r%-*} + 1))
done
IFS=$ifs
read -r console </sys/class/tty/console/active
say "ready cpus=$cpus online=$online console=$console"

# vmm.run=CMD or vmm.run="CMD WITH SPACES": run it, report, power off.
read -r cmdline </proc/cmdline
case " $cmdline " in
*" vmm.run="*)
	run=${cmdline#*vmm.run=}
	case $run in
	\"*) run=${run#\"} run=${run%%\"*} ;;
	*) run=${run%% *} ;;
	esac
	say "run: $run"
	sh -c "$run" </dev/null
	say "run status=$?"
	exec /sbin/vmm-off poweroff
	;;
esac

# A job-control shell on the console (cttyhack makes it the controlling
# tty of a new session), respawned when it exits. It runs in the
# foreground: a background job of this non-interactive shell would start
# with SIGINT ignored, and Ctrl-C would not stop its commands.
# (poweroff, reboot and halt are /sbin/vmm-off: they need no init.)
while :; do
	setsid cttyhack sh
	say "shell exited; respawning"
done
