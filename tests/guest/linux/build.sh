#!/usr/bin/env bash
# build.sh OUT_DIR — build the Linux test kernel (OUT_DIR/vmlinux, a PVH ELF).
#
# Debian's linux-source-6.1, `make tinyconfig`, plus config.fragment, plus
# patches/*.patch, built with `make vmlinux`. See README.md beside this file
# for why each piece is there. The result is cached: it is rebuilt only when
# the source package version, the fragment, a patch or this script changes.
#
# Needs root for apt-get when a package is missing (as on our hosts and CI).
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 OUT_DIR" >&2
	exit 2
fi

HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
SRC=$OUT/src
LOG=$OUT/build.log
STAMP=$OUT/vmlinux.stamp
FRAGMENT=$HERE/config.fragment
TARBALL=/usr/src/linux-source-6.1.tar.xz
JOBS=${JOBS:-2}
KMAKE=(make -C "$SRC" ARCH=x86_64)

start=$(date +%s.%N)
elapsed() { echo "$(date +%s.%N) - $start" | bc | xargs printf '%.1f'; }

# fail MSG: print MSG and the tail of the build log, then stop.
fail() {
	echo "build.sh: $*" >&2
	if [ -s "$LOG" ]; then
		echo "---- last 40 lines of $LOG ----" >&2
		tail -n 40 "$LOG" >&2
	fi
	exit 1
}

# 1. Host packages, installed only when missing.
PKGS=(linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev xz-utils)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "build.sh: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
		fail "apt-get install ${missing[*]} failed"
fi

# 2. Cache key: source version + fragment + patches + this script.
version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
patches=("$HERE"/patches/*.patch)
key=$( {
	echo "linux-source-6.1 $version"
	sha256sum "$FRAGMENT" "${patches[@]}" "$HERE/build.sh" | sed "s|$HERE/||"
} | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/vmlinux" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key" ]; then
	echo "build.sh: $OUT/vmlinux is up to date (linux-source-6.1 $version, key ${key:0:12}) [$(elapsed) s]"
	exit 0
fi
rm -f "$STAMP"
: >"$LOG"

# 3. Unpack the source once per package version.
if [ ! -f "$SRC/.vmm-source-version" ] || [ "$(cat "$SRC/.vmm-source-version")" != "$version" ]; then
	echo "build.sh: unpacking $TARBALL ($version) into $SRC"
	rm -rf "$SRC" "$SRC.tmp"
	mkdir -p "$SRC.tmp"
	tar -xJf "$TARBALL" -C "$SRC.tmp" --strip-components=1 || fail "unpacking $TARBALL failed"
	echo "$version" >"$SRC.tmp/.vmm-source-version"
	mv "$SRC.tmp" "$SRC"
fi

# 4. Patches: take back the ones applied by an earlier run (kept in
# .vmm-patches), then apply the checked-in set. When the two sets are the
# same, nothing is touched (so make rebuilds nothing for them).
applied=$SRC/.vmm-patches
same_patches() {
	[ -d "$applied" ] || return 1
	[ "$(cd "$applied" && ls)" = "$(cd "$HERE/patches" && ls -- *.patch)" ] || return 1
	for p in "${patches[@]}"; do
		cmp -s "$p" "$applied/$(basename "$p")" || return 1
	done
}
if same_patches; then
	echo "build.sh: patches already applied"
elif [ -d "$applied" ]; then
	for p in $(ls "$applied"/*.patch 2>/dev/null | sort -r); do
		patch -d "$SRC" -p1 -R -s -f <"$p" >>"$LOG" 2>&1 || fail "reverting $(basename "$p") failed"
	done
	rm -rf "$applied"
fi
if [ ! -d "$applied" ]; then
	rm -rf "$applied.tmp"
	mkdir -p "$applied.tmp"
	for p in "${patches[@]}"; do
		echo "build.sh: applying $(basename "$p")"
		patch -d "$SRC" -p1 -s -f -N <"$p" >>"$LOG" 2>&1 || fail "applying $(basename "$p") failed"
		cp "$p" "$applied.tmp/"
	done
	mv "$applied.tmp" "$applied"
fi

# 5. Configuration: tinyconfig + fragment, then check every fragment line.
echo "build.sh: configuring (tinyconfig + $(basename "$FRAGMENT"))"
"${KMAKE[@]}" tinyconfig >>"$LOG" 2>&1 || fail "make tinyconfig failed"
(cd "$SRC" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m .config "$FRAGMENT") >>"$LOG" 2>&1 ||
	fail "merge_config.sh failed"
"${KMAKE[@]}" olddefconfig >>"$LOG" 2>&1 || fail "make olddefconfig failed"

# Every symbol Kconfig knows, so a misspelt "is not set" line cannot pass.
known=$(cd "$SRC" && find . -name 'Kconfig*' -type f -print0 |
	xargs -0 grep -hoE '^[[:space:]]*(menu)?config [A-Za-z0-9_]+' | awk '{print $2}' | sort -u)
bad=()
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		sym=${line%%=*}
		grep -qxF "$line" "$SRC/.config" ||
			bad+=("$line (got: $(grep -E "^(# )?$sym[= ]" "$SRC/.config" || echo 'absent'))")
		;;
	"# CONFIG_"*" is not set")
		sym=${line#\# }
		sym=${sym%% *}
		if ! grep -qxF "${sym#CONFIG_}" <<<"$known"; then
			bad+=("$line (no such Kconfig symbol)")
		elif grep -qE "^$sym=" "$SRC/.config"; then
			bad+=("$line (got: $(grep -E "^$sym=" "$SRC/.config"))")
		fi
		;;
	esac
done <"$FRAGMENT"
if [ ${#bad[@]} -gt 0 ]; then
	echo "build.sh: these config.fragment lines did not take effect:" >&2
	printf '  %s\n' "${bad[@]}" >&2
	exit 1
fi

# 6. Build. libcall: an inlined `rep stosb/movsb` is slow where CPL0 code
# is emulated; calls to memset/memcpy use the rep-movsq forms instead.
echo "build.sh: make -j$JOBS vmlinux (log: $LOG)"
"${KMAKE[@]}" -j"$JOBS" KCFLAGS=-mstringop-strategy=libcall vmlinux >>"$LOG" 2>&1 || fail "make vmlinux failed"
cp "$SRC/vmlinux" "$OUT/vmlinux.tmp"
mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
echo "$key" >"$STAMP"
echo "build.sh: built $OUT/vmlinux ($(stat -c %s "$OUT/vmlinux") bytes, linux-source-6.1 $version) in $(elapsed) s"
