#!/bin/sh
# fetch-debian.sh BUILD_DIR
#
# Downloads the current Debian linux-image-amd64 kernel package without
# installing it and leaves in BUILD_DIR/debian/:
#   bzImage  - boot/vmlinuz-* (the bzImage, 64-bit boot protocol)
#   vmlinux  - the uncompressed ELF taken from the bzImage payload (PVH entry)
#   modules/ - the modules a stock guest and the nested rig's outer machine
#              load: virtio, virtio_console, 9p (and netfs, fscache), kvm,
#              kvm-amd (and ccp, irqbypass); MODULES lists them
# and, from linux-image-cloud-amd64, in BUILD_DIR/debian-cloud/:
#   bzImage, modules/ (the virtio and char driver modules, the ACPI
#   button and evdev for the stock userland's acpid, and pvpanic-mmio),
#   MODULES, BUILTIN
# (see fetch_cloud below).
# Idempotent: fetches nothing whose files are already there.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
build="$1"
out="$build/debian"
cloud="$build/debian-cloud"

sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
fi

# need_tool CMD PACKAGE installs PACKAGE when CMD is missing.
need_tool() {
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "fetch-debian: installing $2 for $1" >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2
}

# resolve META prints the versioned image package that META (e.g.
# linux-image-amd64) currently depends on.
resolve() {
	apt-cache depends "$1" 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}

# fetch_deb META DIR downloads the package META depends on and unpacks it
# into DIR/root; it leaves the .deb's file name in DIR/PACKAGE.
fetch_deb() {
	meta="$1"
	dir="$2"
	pkg="$(resolve "$meta")"
	if [ -z "$pkg" ]; then
		$sudo apt-get update -q >&2
		pkg="$(resolve "$meta")"
	fi
	if [ -z "$pkg" ]; then
		echo "fetch-debian: apt-cache names no $meta dependency" >&2
		exit 1
	fi
	# A virtual name (e.g. provided by a signed package) has no candidate
	# of its own; fall back to the -unsigned build or to whatever provides it.
	if ! apt-cache show "$pkg" 2>/dev/null | grep -q '^Filename:'; then
		if apt-cache show "$pkg-unsigned" 2>/dev/null | grep -q '^Filename:'; then
			pkg="$pkg-unsigned"
		else
			prov="$(apt-cache showpkg "$pkg" 2>/dev/null |
				awk '/^Reverse Provides:/{f=1; next} f && NF {print $1; exit}')"
			if [ -n "$prov" ]; then
				pkg="$prov"
			fi
		fi
	fi
	echo "fetch-debian: $pkg" >&2
	mkdir -p "$dir/dl"
	# apt downloads as its _apt user when it can; let it write there.
	if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
		chown _apt "$dir/dl"
	fi
	(cd "$dir/dl" && apt-get download -q "$pkg" >&2)
	deb="$(ls "$dir"/dl/*.deb | head -n 1)"
	dpkg-deb -x "$deb" "$dir/root"
	basename "$deb" >"$dir/PACKAGE"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# apt downloads as its _apt user when it can; let it reach its directory.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
	chown _apt "$work"
fi

# CLOUD_EXTRA are the cloud kernel's modules outside drivers/virtio and
# drivers/char that the stock userland loads: the ACPI power button
# (PNP0C0C, which vmm's GED notifies on QMP system_powerdown) and evdev,
# through which busybox acpid reads its KEY_POWER; and pvpanic-mmio, which
# (with pvpanic, its core) binds vmm's pvpanic port (QEMU0001 in the DSDT)
# and reports a panic.
CLOUD_EXTRA="drivers/acpi/button drivers/input/evdev drivers/misc/pvpanic/pvpanic drivers/misc/pvpanic/pvpanic-mmio"

# cloud_extra KDIR copies CLOUD_EXTRA's modules from the unpacked
# KDIR (lib/modules/VERSION) into BUILD_DIR/debian-cloud/modules, or
# adds their modules.builtin lines to BUILTIN when they are built in.
cloud_extra() {
	for m in $CLOUD_EXTRA; do
		for f in "$1/kernel/$m".ko*; do
			[ -e "$f" ] && cp "$f" "$cloud/modules/"
		done
	done
	grep -E '/(button|evdev|pvpanic|pvpanic-mmio)\.ko' "$1/modules.builtin" >>"$cloud/BUILTIN" 2>/dev/null || true
}

# cloud_add_extra adds CLOUD_EXTRA to a BUILD_DIR/debian-cloud made
# before they were kept: it fetches the package named in PACKAGE again
# (the same version, so the modules match bzImage) and takes only them.
cloud_add_extra() {
	f="$(cat "$cloud/PACKAGE")"
	pkg="${f%%_*}"
	ver="${f#*_}"
	ver="$(echo "${ver%_*}" | sed 's/%3a/:/')"
	ce="$work/cloud-extra"
	mkdir -p "$ce/dl" "$ce/root"
	if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
		chown _apt "$ce/dl"
	fi
	echo "fetch-debian: $pkg=$ver again, for $CLOUD_EXTRA" >&2
	(cd "$ce/dl" && apt-get download -q "$pkg=$ver" >&2)
	dpkg-deb -x "$(ls "$ce"/dl/*.deb | head -n 1)" "$ce/root"
	cloud_extra "$(ls -d "$ce"/root/lib/modules/* | head -n 1)"
	(cd "$cloud/modules" && ls) >"$cloud/MODULES.tmp"
	mv "$cloud/MODULES.tmp" "$cloud/MODULES"
}

# fetch_cloud fills BUILD_DIR/debian-cloud/ from linux-image-cloud-amd64:
#   bzImage   - boot/vmlinuz-*
#   modules/  - the .ko files of drivers/virtio and drivers/char (the
#               virtio_console driver) and CLOUD_EXTRA, as shipped (.ko,
#               .ko.xz or .ko.zst)
#   MODULES   - their names, one a line
#   BUILTIN   - the virtio (and CLOUD_EXTRA) lines of modules.builtin
#               (drivers built in)
fetch_cloud() {
	if [ -s "$cloud/bzImage" ] && [ -s "$cloud/MODULES" ]; then
		if ! grep -qsE '^pvpanic\.ko|/pvpanic\.ko' "$cloud/MODULES" "$cloud/BUILTIN" && [ -s "$cloud/PACKAGE" ]; then
			cloud_add_extra
		fi
		return 0
	fi
	cw="$work/cloud"
	mkdir -p "$cw" "$cloud"
	fetch_deb linux-image-cloud-amd64 "$cw"
	rm -rf "$cloud/modules"
	mkdir -p "$cloud/modules"
	kdir="$(ls -d "$cw"/root/lib/modules/* | head -n 1)"
	for d in virtio char; do
		if [ -d "$kdir/kernel/drivers/$d" ]; then
			find "$kdir/kernel/drivers/$d" -name '*.ko*' -exec cp {} "$cloud/modules/" \;
		fi
	done
	grep virtio "$kdir/modules.builtin" >"$cloud/BUILTIN" 2>/dev/null || true
	cloud_extra "$kdir"
	(cd "$cloud/modules" && ls) >"$cloud/MODULES.tmp"
	cp "$cw/PACKAGE" "$cloud/PACKAGE"
	cp "$(ls "$cw"/root/boot/vmlinuz-* | head -n 1)" "$cloud/bzImage.tmp"
	mv "$cloud/bzImage.tmp" "$cloud/bzImage"
	mv "$cloud/MODULES.tmp" "$cloud/MODULES"
	echo "fetch-debian: wrote $cloud/bzImage and $(wc -l <"$cloud/MODULES") modules in $cloud/modules:" >&2
	sed 's/^/fetch-debian:   /' "$cloud/MODULES" >&2
}
fetch_cloud

if [ -s "$out/bzImage" ] && [ -s "$out/vmlinux" ] && [ -s "$out/MODULES" ]; then
	exit 0
fi
mkdir -p "$out"
fetch_deb linux-image-amd64 "$work"
rm -rf "$out/modules"
mkdir -p "$out/modules"
gdir="$(ls -d "$work"/root/lib/modules/* | head -n 1)/kernel"
for d in drivers/virtio drivers/char fs/9p net/9p fs/netfs fs/fscache arch/x86/kvm virt/lib drivers/crypto/ccp; do
	if [ -d "$gdir/$d" ]; then
		find "$gdir/$d" -name '*.ko*' -exec cp {} "$out/modules/" \;
	fi
done
(cd "$out/modules" && ls) >"$out/MODULES"
grep -E 'virtio|9p|kvm' "$gdir/../modules.builtin" >"$out/BUILTIN" 2>/dev/null || true
vmlinuz="$(ls "$work"/root/boot/vmlinuz-* | head -n 1)"
cp "$vmlinuz" "$out/bzImage.tmp"
cp "$work/PACKAGE" "$out/PACKAGE"

# Setup header fields (little-endian): setup_sects at 0x1f1 (0 means 4),
# payload_offset at 0x248 and payload_length at 0x24c, both relative to the
# start of the protected-mode kernel at (setup_sects+1)*512.
u8() { od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N 4 --endian=little "$1" | tr -d ' '; }
sects="$(u8 "$out/bzImage.tmp" $((0x1f1)))"
[ "$sects" -eq 0 ] && sects=4
poff="$(u32 "$out/bzImage.tmp" $((0x248)))"
plen="$(u32 "$out/bzImage.tmp" $((0x24c)))"
start=$(((sects + 1) * 512 + poff))
tail -c +"$((start + 1))" "$out/bzImage.tmp" | head -c "$plen" >"$work/payload"

magic="$(od -An -tx1 -N 6 "$work/payload" | tr -d ' \n')"
case "$magic" in
fd377a585a00*) need_tool xz xz-utils; dec="xz -dc" ;;
1f8b* | 1f9e*) need_tool gzip gzip; dec="gzip -dc" ;;
28b52ffd*) need_tool zstd zstd; dec="zstd -dcq" ;;
5d0000*) need_tool xz xz-utils; dec="xz -dc --format=lzma" ;;
425a68*) need_tool bzip2 bzip2; dec="bzip2 -dc" ;;
02214c18*) need_tool lz4 lz4; dec="lz4 -dc" ;;
894c5a4f*) need_tool lzop lzop; dec="lzop -dc" ;;
*)
	echo "fetch-debian: unknown payload compression (magic $magic)" >&2
	exit 1
	;;
esac
echo "fetch-debian: payload at $start, $plen bytes, ${dec%% *}" >&2
# The kernel's own decompressors tolerate trailing bytes (the appended size
# word); the CLI tools may complain about it, so keep what they produced.
$dec <"$work/payload" >"$work/vmlinux" 2>"$work/dec.err" || true
if [ "$(od -An -tx1 -N 4 "$work/vmlinux" | tr -d ' \n')" != "7f454c46" ]; then
	echo "fetch-debian: decompressed payload is not an ELF file" >&2
	cat "$work/dec.err" >&2
	exit 1
fi
mv "$work/vmlinux" "$out/vmlinux"
mv "$out/bzImage.tmp" "$out/bzImage"
echo "fetch-debian: wrote $out/bzImage and $out/vmlinux" >&2
