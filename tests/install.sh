#!/bin/sh
# Install into a scratch root and build an out-of-tree program with
# pkg-config against it, as a user of the library would.
# usage: install.sh BUILD_DIR SOURCE_DIR CC
set -eu
build=$1; src=$2; cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
pc=$(dirname "$(find "$tmp/root" -name vsm.pc | head -n1)")
[ -n "$pc" ] || { echo "FAIL: vsm.pc not installed"; exit 1; }
for h in vsm.h backend.h container.h; do
	find "$tmp/root" -path "*/include/vsm/$h" | grep -q . || { echo "FAIL: $h not installed"; exit 1; }
done
find "$tmp/root" -name vsmctl -type f | grep -q . || { echo "FAIL: vsmctl not installed"; exit 1; }
find "$tmp/root" -path '*/bash-completion/completions/vsmctl' | grep -q . ||
	{ echo "FAIL: bash completion not installed"; exit 1; }
man=$(find "$tmp/root" -path '*/man1/vsmctl.1' | head -n1)
[ -n "$man" ] || { echo "FAIL: man page vsmctl.1 not installed"; exit 1; }
if command -v man >/dev/null; then
	MANWIDTH=80 man -l "$man" 2>/dev/null | grep -q '^EXIT STATUS' ||
		{ echo "FAIL: man -l $man does not render"; exit 1; }
fi
flags=$(PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$tmp/root" pkg-config --cflags --libs vsm)
$cc -std=c99 -Wall -Werror "$src/examples/hello.c" $flags -o "$tmp/hello"
libdir=$(dirname "$(find "$tmp/root" -name 'libvsm.so.0' | head -n1)")
mkdir "$tmp/ds"
# A sanitizer build of the library needs its runtime loaded first.
asan=$(ldd "$libdir/libvsm.so.0" | awk '/libasan/ { print $3 }')
LD_PRELOAD="$asan" LD_LIBRARY_PATH="$libdir" "$tmp/hello" "$tmp/state" "file://$tmp/ds" > "$tmp/out"
grep -q "^file://$tmp/ds/" "$tmp/out" || { echo "FAIL: hello printed:"; cat "$tmp/out"; exit 1; }
grep -q "<disk type='file'" "$tmp/out" || { echo "FAIL: no disk XML"; exit 1; }
echo "ok: installed library, headers, vsm.pc, man page and bash completion; an out-of-tree program builds and runs"
