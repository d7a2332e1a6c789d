#!/bin/sh
# The shared library exports only vsm_* symbols, each versioned VSM_0.1 or
# VSM_0.2 (the release that introduced it),
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
unversioned=$(objdump -T "$lib" | awk '/ DF .text/ && $0 !~ /VSM_0\.[12]/' || true)
if [ -n "$unversioned" ]; then
	echo "FAIL: exported functions without a VSM_0.1/VSM_0.2 version:"; echo "$unversioned"; exit 1
fi
# A 0.1 symbol must stay in VSM_0.1 and a 0.2 one must not fall into it
# through the vsm_* pattern.
node_of() { objdump -T "$lib" | awk -v s="$1" '$NF == s { print $(NF-1) }'; }
for pair in vsm_ctx_open:VSM_0.1 vsm_backend_register:VSM_0.1 \
	    vsm_datastore_check:VSM_0.2 vsm_orphan_state_name:VSM_0.2 \
	    vsm_disk_xml_build:VSM_0.2 vsm_disk_xml_escape:VSM_0.2 \
	    vsm_disk_target_check:VSM_0.2 vsm_disk_bus_check:VSM_0.2; do
	sym=${pair%%:*} want=${pair#*:}
	got=$(node_of "$sym")
	[ "$got" = "$want" ] || { echo "FAIL: $sym is versioned '$got', want $want"; exit 1; }
done
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libvsm.so.0" ] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
echo "ok: $count vsm_* symbols, all VSM_0.1/VSM_0.2, SONAME $soname"
