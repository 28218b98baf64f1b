#!/bin/sh
# build.sh BUILD_DIR
#
# Builds the shell initramfs images for vmm's stock-kernel tests in
# BUILD_DIR/stock/ (uncompressed newc cpio, see mkrootfs/):
#   shell-test.cpio     busybox alone, no modules (the Linux test kernel
#                       has every driver built in; its kernel mode is
#                       emulated here, and unpacking qemu-ga's 6 MB
#                       costs ~20 s of its boot)
#   shell-test-agent.cpio  busybox + qemu-ga, no modules
#   shell-cloud.cpio    the same + the virtio, evdev and ACPI button modules
#                       of Debian's cloud kernel
#                       (BUILD_DIR/debian-cloud, from `make kernels`)
#   shell-generic.cpio  the same + the virtio modules of Debian's generic
#                       kernel (BUILD_DIR/debian): the package named in
#                       BUILD_DIR/debian/PACKAGE is fetched again and only
#                       its virtio modules and modules.builtin are kept
# busybox-static and qemu-guest-agent come from Debian with `apt-get
# download` and are unpacked with `dpkg-deb -x`, never installed; qemu-ga's
# libraries come from this (Debian) host. A cloud or generic image whose
# kernel is not there yet is skipped with a message.
#
# Idempotent: downloads are kept in BUILD_DIR/stock/dl, and an image is
# rebuilt only when its inputs (packages, modules, mkrootfs, this script)
# change (BUILD_DIR/stock/*.stamp). $GO names the go command (default go).
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mkdir -p "$1"
build="$(cd "$1" && pwd)"
out="$build/stock"
dl="$out/dl"
mkdir -p "$out" "$dl"

# The virtio drivers virtio-serial needs, in load order, then evdev and
# the ACPI button driver (the power button acpid listens to, pressed by
# QMP system_powerdown); "?" = optional (a kernel directory fetched
# before they were kept has no button or evdev).
MODULES="virtio_ring,virtio,virtio_pci_modern_dev,virtio_pci_legacy_dev?,virtio_pci,virtio_mmio,virtio_console,evdev?,button?,pvpanic?,pvpanic-mmio?"

sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
fi

# need_tool CMD PACKAGE installs PACKAGE when CMD is missing.
need_tool() {
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "stock: installing $2 for $1" >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2
}
need_tool dpkg-deb dpkg
need_tool sha256sum coreutils

# fetch PKG[=VERSION] NAME: downloads the package into $dl/NAME/ once
# (apt-get download, as the _apt user when it can) and prints the .deb path.
fetch() {
	d="$dl/$2"
	deb="$(ls "$d"/*.deb 2>/dev/null | head -n 1 || true)"
	if [ -z "$deb" ]; then
		mkdir -p "$d"
		if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
			chown _apt "$d"
		fi
		echo "stock: apt-get download $1" >&2
		if ! (cd "$d" && apt-get download -q "$1" >&2); then
			$sudo apt-get update -q >&2
			(cd "$d" && apt-get download -q "$1" >&2)
		fi
		deb="$(ls "$d"/*.deb | head -n 1)"
	fi
	echo "$deb"
}

# unpack DEB DIR: dpkg-deb -x into DIR once.
unpack() {
	if [ ! -e "$2/.unpacked" ]; then
		rm -rf "$2"
		mkdir -p "$2"
		dpkg-deb -x "$1" "$2"
		basename "$1" >"$2/.unpacked"
	fi
}

bbdeb="$(fetch busybox-static busybox)"
gadeb="$(fetch qemu-guest-agent qemu-ga)"
unpack "$bbdeb" "$out/busybox"
unpack "$gadeb" "$out/qemu-ga"
busybox="$out/busybox/bin/busybox"
qga="$out/qemu-ga/usr/sbin/qemu-ga"

# The generic kernel's modules: the package of BUILD_DIR/debian/PACKAGE
# (so they match its bzImage), or failing that what linux-image-amd64
# depends on, preferring -unsigned where the name is virtual (as
# tests/kernels/fetch-debian.sh does). Only drivers/virtio,
# virtio_console, the ACPI button, evdev and modules.builtin are extracted
# (the package is 400 MB unpacked); the .deb is deleted afterwards.
generic_modules() {
	g="$out/generic"
	[ -s "$g/MODULES" ] && return 0
	if [ -s "$build/debian/PACKAGE" ]; then
		f="$(cat "$build/debian/PACKAGE")"
		pkg="${f%%_*}"
		ver="${f#*_}"
		ver="${ver%_*}"
		ver="$(echo "$ver" | sed 's/%3a/:/')"
		spec="$pkg=$ver"
	else
		pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
		if [ -z "$pkg" ]; then
			echo "stock: apt-cache names no linux-image-amd64 dependency" >&2
			return 1
		fi
		if ! apt-cache show "$pkg" 2>/dev/null | grep -q '^Filename:'; then
			pkg="$pkg-unsigned"
		fi
		spec="$pkg"
	fi
	deb="$(fetch "$spec" generic-kernel)"
	rm -rf "$g"
	mkdir -p "$g/x" "$g/modules"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -x -C "$g/x" --wildcards '*/kernel/drivers/virtio/*' '*/kernel/drivers/char/*' \
			'*/kernel/drivers/acpi/*' '*/kernel/drivers/input/*' '*/kernel/drivers/misc/pvpanic/*' '*/modules.builtin'
	find "$g/x" -path '*/kernel/drivers/virtio/*.ko*' -exec cp {} "$g/modules/" \;
	find "$g/x" -path '*/kernel/drivers/char/*' -name 'virtio_console.ko*' -exec cp {} "$g/modules/" \;
	find "$g/x" \( -path '*/kernel/drivers/acpi/button.ko*' -o -path '*/kernel/drivers/input/evdev.ko*' -o -path '*/kernel/drivers/misc/pvpanic/pvpanic*.ko*' \) -exec cp {} "$g/modules/" \;
	find "$g/x" -name modules.builtin -exec grep -E 'virtio|/button\.ko|/evdev\.ko|/pvpanic(-mmio)?\.ko' {} + >"$g/BUILTIN" || true
	basename "$deb" >"$g/PACKAGE"
	rm -rf "$g/x" "$dl/generic-kernel"
	(cd "$g/modules" && ls) >"$g/MODULES"
	echo "stock: generic kernel modules from $(cat "$g/PACKAGE"): $(tr '\n' ' ' <"$g/MODULES")" >&2
}

# image NAME [noagent]: builds $out/shell-NAME.cpio, with qemu-ga (unless
# noagent) and the modules of $mods (none if empty) minus those $builtin
# names, unless its stamp (sha256 of every input file) is current.
image() {
	name="$1"
	cpio="$out/shell-$name.cpio"
	if [ "${2:-}" = noagent ]; then
		set -- -o "$cpio" -busybox "$busybox"
		inputs="$busybox $here/build.sh $(ls "$here"/mkrootfs/*)"
	else
		set -- -o "$cpio" -busybox "$busybox" -qga "$qga"
		inputs="$busybox $qga $here/build.sh $(ls "$here"/mkrootfs/*)"
	fi
	if [ -n "$mods" ]; then
		set -- "$@" -modules "$mods" -module-list "$MODULES" -builtin "$builtin"
		inputs="$inputs $(ls "$mods"/*) $builtin"
	fi
	# shellcheck disable=SC2086
	key="$(cat $inputs | sha256sum | cut -d' ' -f1)"
	if [ -s "$cpio" ] && [ "$(cat "$cpio.stamp" 2>/dev/null)" = "$key" ]; then
		echo "stock: $cpio is up to date" >&2
		return 0
	fi
	(cd "$repo" && CGO_ENABLED=0 "${GO:-go}" run ./tests/stock/mkrootfs "$@")
	echo "$key" >"$cpio.stamp"
	echo "stock: wrote $cpio ($(($(stat -c %s "$cpio") / 1024)) KiB)" >&2
}

mods="" builtin=""
image test noagent
image test-agent

if [ -s "$build/debian-cloud/bzImage" ] && [ -d "$build/debian-cloud/modules" ]; then
	mods="$build/debian-cloud/modules" builtin="$build/debian-cloud/BUILTIN"
	image cloud
else
	echo "stock: no cloud kernel in $build/debian-cloud (make kernels): shell-cloud.cpio skipped" >&2
fi

if [ -s "$build/debian/bzImage" ]; then
	generic_modules
	mods="$out/generic/modules" builtin="$out/generic/BUILTIN"
	image generic
else
	echo "stock: no generic kernel in $build/debian (make kernels): shell-generic.cpio skipped" >&2
fi
