#!/bin/sh
# The shared library exports only vsm_* symbols, each versioned VSM_0.1 or
# (those new in 0.2) VSM_0.2, under the SONAME libvsm.so.0.
# usage: abi.sh LIBRARY
set -eu
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | grep -v '^vsm_' || true)
if [ -n "$bad" ]; then
	echo "FAIL: symbols outside the vsm_ namespace are exported:"; echo "$bad"; exit 1
fi
count=$(nm -D --defined-only "$lib" | awk '$2 != "A"' | wc -l)
[ "$count" -gt 20 ] || { echo "FAIL: only $count symbols exported"; exit 1; }
unversioned=$(objdump -T "$lib" | awk '/ DF .text/ && $0 !~ /VSM_0\.[12] /' || true)
if [ -n "$unversioned" ]; then
	echo "FAIL: exported functions without a VSM_0.1/VSM_0.2 version:"; echo "$unversioned"; exit 1
fi
# Symbols introduced in 0.2 must carry VSM_0.2, not the 0.1 glob's version.
for sym in vsm_disk_xml_build vsm_disk_xml_escape vsm_disk_target_check vsm_disk_bus_check; do
	ver=$(objdump -T "$lib" | awk -v s="$sym" '$NF == s { print $(NF-1) }')
	[ "$ver" = "VSM_0.2" ] || { echo "FAIL: $sym has version '$ver', want VSM_0.2"; exit 1; }
done
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libvsm.so.0" ] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
echo "ok: $count vsm_* symbols, VSM_0.1 and VSM_0.2, SONAME $soname"
