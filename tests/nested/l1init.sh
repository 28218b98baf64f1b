#!/bin/busybox sh
# /init of the nested rig's outer machine (L1): Debian's generic kernel
# under QEMU's TCG with emulated SVM. It loads virtio, 9p and kvm-amd,
# mounts the host's root read-only (tag "host") and the run folder
# read-write (tag "out") at the same path inside it, and runs the run
# folder's cmd.sh chrooted there, so the host's tools and the checkout
# are at their usual paths. The command's status goes to status in the
# run folder; then the machine powers off.
/bin/busybox mkdir -p /proc /sys /dev /host /bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

out=""
for w in $(cat /proc/cmdline); do
	case "$w" in nested.out=*) out="${w#nested.out=}" ;; esac
done

for m in $(cat /modules.list); do
	insmod "/lib/modules/$m.ko" || echo "nested-rig: insmod $m failed"
done

opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,ro" host /host || echo "nested-rig: cannot mount the host's root"
mount -t 9p -o "$opts" out "/host$out" || echo "nested-rig: cannot mount the run folder $out"
mkdir -p /dev/pts
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount --rbind /dev /host/dev
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
# The command's scratch space (TMPDIR: sockets, t.TempDir) lives in
# L1's RAM at /mnt: the host's root is read-only here, 9p has no unix
# sockets, and the host's /tmp stays visible (a checkout or a test
# binary may live there).
mount -t tmpfs -o mode=1777 scratch /host/mnt
[ -c /dev/kvm ] || echo "nested-rig: no /dev/kvm (kvm_amd did not load)"

chroot /host /bin/sh "$out/cmd.sh"
echo $? >"/host$out/status"
sync
poweroff -f
