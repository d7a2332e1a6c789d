#!/bin/sh
# The shared library exports only vsm_* symbols, each versioned VSM_0.1,
# under the SONAME libvsm.so.0.
# usage: abi.sh LIBRARY
set -eu
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | grep -v '^vsm_' || true)
if [ -n "$bad" ]; then
	echo "FAIL: symbols outside the vsm_ namespace are exported:"; echo "$bad"; exit 1
fi
count=$(nm -D --defined-only "$lib" | awk '$2 != "A"' | wc -l)
[ "$count" -gt 20 ] || { echo "FAIL: only $count symbols exported"; exit 1; }
unversioned=$(objdump -T "$lib" | awk '/ DF .text/ && $0 !~ /VSM_0\.1/' || true)
if [ -n "$unversioned" ]; then
	echo "FAIL: exported functions without the VSM_0.1 version:"; echo "$unversioned"; exit 1
fi
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libvsm.so.0" ] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
echo "ok: $count vsm_* symbols, all VSM_0.1, SONAME $soname"
