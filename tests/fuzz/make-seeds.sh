#!/bin/bash
# Regenerate the seed corpora of the fuzz targets (doc/fuzzing.md) into
# tests/fuzz/corpus/<target>/. The output is checked in, so CI never runs
# this. Needs qemu-img and qemu-io (qemu-utils), python3, and a normal
# build directory (for vsmctl and fuzz-seedgen).
# usage: tests/fuzz/make-seeds.sh [BUILD_DIR]   (default: build)
# Files are small on purpose: small clusters, small disks. Existing
# files are replaced; reproducers of fixed bugs (repro-* names) that
# this script does not make are kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
V=$build/tools/vsmctl/vsmctl
G=$build/tests/fuzz/fuzz-seedgen
C=$here/corpus
for p in qemu-img qemu-io python3 "$V" "$G"; do
	command -v "$p" >/dev/null || { echo "make-seeds: $p is missing" >&2; exit 1; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$C"/{qcow2,record,bundle,uri,lease}

# Patch big-endian fields of a file: be FILE OFFSET BYTES VALUE
be() {
	python3 - "$@" <<'PY'
import sys
path, off, n, val = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3]), int(sys.argv[4], 0)
with open(path, 'r+b') as f:
    f.seek(off)
    f.write(val.to_bytes(n, 'big'))
PY
}
# Read one: getbe FILE OFFSET BYTES
getbe() {
	python3 - "$@" <<'PY'
import sys
path, off, n = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3])
with open(path, 'rb') as f:
    f.seek(off)
    print(int.from_bytes(f.read(n), 'big'))
PY
}
mk() { # mk NAME SIZE [qemu-img create options...]
	local name=$1 size=$2
	shift 2
	qemu-img create -q -f qcow2 "$@" "$T/$name" "$size"
}
io() { qemu-io -c "$2" "$T/$1" >/dev/null; }
keep() { cp "$T/$1" "$C/qcow2/$1"; }

# ---- qcow2 images: layouts qemu-img makes (4 KiB clusters unless said)
Q="-o cluster_size=4096"
mk v3-empty.qcow2 1M $Q && keep v3-empty.qcow2
mk v3-data.qcow2 1M $Q && io v3-data.qcow2 'write -P 0x5a 0 8k' &&
	io v3-data.qcow2 'write -P 0xa5 512k 4k' && io v3-data.qcow2 'write -z 64k 8k' && keep v3-data.qcow2
mk v2-data.qcow2 1M $Q,compat=0.10 && io v2-data.qcow2 'write -P 0x11 4k 4k' && keep v2-data.qcow2
mk c512.qcow2 256k -o cluster_size=512 && io c512.qcow2 'write -P 0x22 0 2k' && keep c512.qcow2
mk rc1.qcow2 1M $Q,refcount_bits=1 && io rc1.qcow2 'write -P 0x33 0 4k' && keep rc1.qcow2
mk rc64.qcow2 1M $Q,refcount_bits=64 && io rc64.qcow2 'write -P 0x44 0 4k' && keep rc64.qcow2
# Compressed clusters.
head -c 65536 /dev/zero | tr '\0' 'z' >"$T/raw"
qemu-img convert -q -c -f raw -O qcow2 $Q "$T/raw" "$T/compressed.qcow2" && keep compressed.qcow2
# A backing file name and format (opened without the backing).
mk base.qcow2 1M $Q
mk backing.qcow2 1M $Q -b "$T/base.qcow2" -F qcow2 && io backing.qcow2 'write -P 0x55 8k 4k' &&
	keep backing.qcow2
# An internal snapshot.
mk snapshot.qcow2 1M $Q && io snapshot.qcow2 'write -P 0x66 0 4k' &&
	qemu-img snapshot -c s1 "$T/snapshot.qcow2" && io snapshot.qcow2 'write -P 0x77 0 4k' &&
	keep snapshot.qcow2
# A persistent dirty bitmap.
mk bitmap.qcow2 1M $Q && qemu-img bitmap --add "$T/bitmap.qcow2" b0 &&
	io bitmap.qcow2 'write -P 0x88 0 4k' && keep bitmap.qcow2
# Several bitmaps (granularities 512 B, 4 KiB, 64 KiB; one disabled, one
# merged), with bits in more than one bitmap-table entry.
mk bitmaps-multi.qcow2 8M -o cluster_size=512 &&
	qemu-img bitmap --add -g 512 "$T/bitmaps-multi.qcow2" fine &&
	qemu-img bitmap --add -g 4096 "$T/bitmaps-multi.qcow2" mid &&
	io bitmaps-multi.qcow2 'write -P 0x12 0 1k' && io bitmaps-multi.qcow2 'write -P 0x13 5M 4k' &&
	qemu-img bitmap --add -g 65536 --merge fine "$T/bitmaps-multi.qcow2" coarse &&
	qemu-img bitmap --disable "$T/bitmaps-multi.qcow2" mid && keep bitmaps-multi.qcow2
# A bitmap left in_use (as by a writer that was killed): flags = in_use|auto.
mk bitmap-inuse.qcow2 1M $Q && qemu-img bitmap --add "$T/bitmap-inuse.qcow2" b0 &&
	io bitmap-inuse.qcow2 'write -P 0x21 0 4k' &&
	p=$(getbe "$T/bitmap-inuse.qcow2" 100 4) &&
	while [ "$(getbe "$T/bitmap-inuse.qcow2" "$p" 4)" != $((0x23852875)) ]; do
		p=$((p + 8 + ($(getbe "$T/bitmap-inuse.qcow2" $((p + 4)) 4) + 7) / 8 * 8)); done &&
	d=$(getbe "$T/bitmap-inuse.qcow2" $((p + 24)) 8) &&
	be "$T/bitmap-inuse.qcow2" $((d + 12)) 4 3 && keep bitmap-inuse.qcow2
# Bitmaps written by libvsm (vsmctl), with data.
mk bitmap-vsm.qcow2 1M $Q && "$V" image bitmap add "$T/bitmap-vsm.qcow2" b0 --granularity 4K >/dev/null &&
	"$V" image bitmap add "$T/bitmap-vsm.qcow2" b1 --granularity 64K >/dev/null &&
	printf 'libvsm' | "$V" image write "$T/bitmap-vsm.qcow2" 70000 >/dev/null &&
	keep bitmap-vsm.qcow2
# Lazy refcounts (clean).
mk lazy.qcow2 1M $Q,lazy_refcounts=on && io lazy.qcow2 'write -P 0x99 0 4k' && keep lazy.qcow2
# Extended L2 entries (refused by the library with ENOTSUP; 16 KiB is the
# smallest cluster size they allow).
if mk extl2.qcow2 1M -o cluster_size=16384,extended_l2=on 2>/dev/null; then
	io extl2.qcow2 'write -P 0xaa 0 4k' && keep extl2.qcow2
fi

# ---- qcow2 reproducers of fixed bugs (issue 12), qemu-img images patched
# Refcount walk that ran for ever: a refcount-table entry at index 8000
# naming a block far past the end of the file (64 KiB clusters, no data:
# the 196 KB image). The 2 MiB-cluster variant is at least 6 MiB and is
# left to tests/cow (cow-bounds); see doc/fuzzing.md.
mk repro-rt-far.qcow2 4M
rt=$(getbe "$T/repro-rt-far.qcow2" 48 8)
be "$T/repro-rt-far.qcow2" $((rt + 8 * 8000)) 8 $((1 << 40)) && keep repro-rt-far.qcow2
# The same with 4 KiB clusters at the last index of the table.
mk repro-rt-far-4k.qcow2 1M $Q && io repro-rt-far-4k.qcow2 'write -P 0x5a 0 8k'
rt=$(getbe "$T/repro-rt-far-4k.qcow2" 48 8)
be "$T/repro-rt-far-4k.qcow2" $((rt + 8 * 511)) 8 $((1 << 40)) && keep repro-rt-far-4k.qcow2
# Refcount-table entry 0 is 0: the allocator wrote over the header.
mk repro-rt0.qcow2 1M $Q && io repro-rt0.qcow2 'write -P 0x5a 0 8k'
rt=$(getbe "$T/repro-rt0.qcow2" 48 8)
be "$T/repro-rt0.qcow2" "$rt" 8 0 && keep repro-rt0.qcow2
# The L1 table's cluster has refcount 0 (16-bit refcounts, block 0).
mk repro-l1-rc0.qcow2 1M $Q && io repro-l1-rc0.qcow2 'write -P 0x5a 0 8k'
rt=$(getbe "$T/repro-l1-rc0.qcow2" 48 8)
rb=$(getbe "$T/repro-l1-rc0.qcow2" "$rt" 8)
l1=$(getbe "$T/repro-l1-rc0.qcow2" 40 8)
be "$T/repro-l1-rc0.qcow2" $((rb + 2 * (l1 / 4096))) 2 0 && keep repro-l1-rc0.qcow2
# header_length 104 (QEMU < 5.1): the extensions moved 8 bytes down.
hl104() { # hl104 FILE
	python3 - "$1" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
hl = int.from_bytes(b[100:104], 'big')
assert hl == 112, hl
cs = 1 << int.from_bytes(b[20:24], 'big')
ext = bytes(b[112:cs])
b[104:cs] = ext + bytes(8)
b[100:104] = (104).to_bytes(4, 'big')
# The backing file name offset (if any) moves with the extensions.
bo = int.from_bytes(b[8:16], 'big')
if bo:
    b[8:16] = (bo - 8).to_bytes(8, 'big')
open(p, 'wb').write(b)
PY
}
mk repro-hl104.qcow2 1M $Q && io repro-hl104.qcow2 'write -P 0x5a 0 8k' &&
	hl104 "$T/repro-hl104.qcow2" && keep repro-hl104.qcow2
mk repro-hl104-backing.qcow2 1M $Q -b "$T/base.qcow2" -F qcow2 &&
	hl104 "$T/repro-hl104-backing.qcow2" && keep repro-hl104-backing.qcow2
# A header cluster crowded with extensions (512-byte clusters: backing
# format, feature table, bitmaps, a long backing name), as a rebase met it.
long=base512-with-a-rather-long-name-that-fills-the-small-header-cluster.qcow2
mk "$long" 256k -o cluster_size=512
mk repro-crowded-header.qcow2 256k -o cluster_size=512 -b "$T/$long" -F qcow2
qemu-img bitmap --add "$T/repro-crowded-header.qcow2" bitmap-number-one-with-a-long-name
io repro-crowded-header.qcow2 'write -P 0x5a 0 1k' && keep repro-crowded-header.qcow2
# A dirty lazy_refcounts image (QEMU died with it open): incompatible
# feature bit 0 set.
mk repro-lazy-dirty.qcow2 1M $Q,lazy_refcounts=on && io repro-lazy-dirty.qcow2 'write -P 0x5a 0 8k'
inc=$(getbe "$T/repro-lazy-dirty.qcow2" 72 8)
be "$T/repro-lazy-dirty.qcow2" 72 8 $((inc | 1)) && keep repro-lazy-dirty.qcow2

# ---- records and bundles, through vsmctl on a file datastore
export VSM_STATE_DIR=$T/state
mkdir -p "$T/ds"
$V datastore add ds1 "file://$T/ds" >/dev/null
$V container create vm --datastore ds1 --disk d0:256K:qcow2 --disk d1:64K --state-size 4K --thin >/dev/null
head -c 3000 /dev/zero | tr '\0' 's' >"$T/state.bin"
$V checkpoint create vm c1 --state-file "$T/state.bin" >/dev/null
$V checkpoint create vm c2 >/dev/null
$V container create small --datastore ds1 --disk d0:64K --state-size 4K >/dev/null
rm -f "$C"/bundle/seed-*
$V export vm "$C/bundle/seed-container.bundle" >/dev/null
$V export vm "$C/bundle/seed-checkpoint.bundle" --checkpoint c1 >/dev/null
$V export small "$C/bundle/seed-small.bundle" >/dev/null
# Record payloads: the newest copy of every used slot of the metadata.
python3 - "$T/ds/.vsm/meta" "$C/record" <<'PY'
import sys, os
meta, out = sys.argv[1], sys.argv[2]
b = open(meta, 'rb').read()
seen = {}
i = b.find(b'VSMREC01')
while i >= 0:
    ver = int.from_bytes(b[i+8:i+12], 'little')
    flags = int.from_bytes(b[i+12:i+16], 'little')
    seq = int.from_bytes(b[i+16:i+24], 'little')
    slot = int.from_bytes(b[i+24:i+28], 'little')
    n = int.from_bytes(b[i+28:i+32], 'little')
    hdr = 40 if ver == 1 else 80 + 4 * int.from_bytes(b[i+36:i+40], 'little')
    if not flags & 3 and n and (slot not in seen or seen[slot][0] < seq):
        seen[slot] = (seq, b[i+hdr:i+hdr+n], b[i:i+hdr+n])
    i = b.find(b'VSMREC01', i + 8)
for slot, (seq, payload, copy) in sorted(seen.items()):
    open(os.path.join(out, 'vsmctl-slot%d.json' % slot), 'wb').write(payload)
    open(os.path.join(out, 'vsmctl-slot%d.copy' % slot), 'wb').write(copy)
PY
"$G" record "$C/record"
"$G" lease "$C/lease"

# ---- URIs
u() { printf '%s' "$2" >"$C/uri/$1"; }
u iscsi-plain 'iscsi://127.0.0.1/iqn.2026-01.org.example:store'
u iscsi-port 'iscsi://target.example:3261/iqn.2026-01.org.example:store?meta-lun=2&timeout=30'
u iscsi-chap 'iscsi://user%secret@10.0.0.1/iqn.2026-01.org.example:t1?wipe=unmap'
u iscsi-ipv6 'iscsi-caw://[fe80::1]:3260/iqn.2026-01.org.example:t1?initiator=iqn.2026-01.org.example:h1'
u iscsi-managed 'iscsi://127.0.0.1:3260/iqn.2026-01.org.example:m?mode=managed&tid=3&dir=/srv/luns&control-port=5000&tgtadm=/usr/sbin/tgtadm'
u iscsi-auth 'iscsi://u@h/iqn.2026-01.org.example:a?auth-secret=vsm-secret&wipe=zero'
printf 'iscsi://h/iqn.2026-01.org.example:s?secret-file=@\0user=alice\npassword=pw\n# comment\n' \
	>"$C/uri/iscsi-secret-file"
u file-plain 'file:///srv/vsm/ds1'
u file-escapes 'file:///srv/vsm/a%20b/%C3%A9t%c3%a9'
u file-dotdot 'file:///srv/%2e%2e/etc'
u file-path '/srv/vsm/with space/and%percent'

du -sh "$C"/* | sed 's/^/make-seeds: /'
echo "make-seeds: $(find "$C" -type f | wc -l) files, $(du -sb "$C" | cut -f1) bytes"
chmod -R u=rwX,go=rX "$C"
