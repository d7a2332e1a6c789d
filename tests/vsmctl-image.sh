#!/bin/bash
# `vsmctl image` end to end, with qemu-img as the independent reader.
# usage: vsmctl-image.sh PATH_TO_VSMCTL
set -u
vsmctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
failures=0
checks=0
ok()  { checks=$((checks + 1)); echo "ok: $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
run() { if out=$("$vsmctl" "$@" 2>err); then ok "vsmctl $*"; else bad "vsmctl $* exited $?: $(cat err)"; fi; }
expect() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', want '$2'"; fi; }
status() { "$vsmctl" "$@" >/dev/null 2>err; echo $?; }
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }

run image create base.qcow2 64M --cluster-size 4096
qemu-img check -q base.qcow2 && ok "qemu-img check: created image clean" || bad "created image"
run --json image info base.qcow2
expect "$(jget 'j[0]["format"], j[0]["virtual-size"], j[0]["cluster-size"]')" "qcow2 67108864 4096" "info --json"

printf 'hello, base' | "$vsmctl" image write base.qcow2 8192 && ok "write from stdin" || bad "write"
expect "$("$vsmctl" image read base.qcow2 8192 11)" "hello, base" "read back"
qemu-img convert -O raw base.qcow2 base.raw
expect "$(dd if=base.raw bs=1 skip=8192 count=11 status=none)" "hello, base" "qemu-img reads our write"

run image create top.qcow2 64M --backing base.qcow2 --backing-format qcow2
printf 'TOP' | "$vsmctl" image write top.qcow2 1048576 && ok "write to overlay" || bad "overlay write"
expect "$("$vsmctl" image read top.qcow2 8192 11)" "hello, base" "read through the backing chain"
run image map top.qcow2 --json
expect "$(jget 'sorted(set(e["depth"] for e in j if e["data"]))')" "[0, 1]" "map shows data in both layers"
qemu-img info --backing-chain top.qcow2 | grep -q "backing file: base.qcow2" && ok "qemu-img sees the chain" || bad "chain"

run image commit top.qcow2
expect "$("$vsmctl" image read base.qcow2 1048576 3)" "TOP" "commit copied the overlay into its base"
qemu-img check -q base.qcow2 && qemu-img check -q top.qcow2 && ok "both clean after commit" || bad "check after commit"

printf 'again' | "$vsmctl" image write top.qcow2 2097152
run image flatten top.qcow2
qemu-img info top.qcow2 | grep -q "backing file" && bad "flatten left a backing file" || ok "flatten dropped the backing file"
rm base.qcow2
expect "$("$vsmctl" image read top.qcow2 8192 11)" "hello, base" "flattened image stands alone"

run image convert top.qcow2 top.raw --format raw
qemu-img compare -q -f qcow2 -F raw top.qcow2 top.raw && ok "convert to raw matches" || bad "convert raw"
run image convert top.raw back.qcow2 --format qcow2
qemu-img compare -q back.qcow2 top.raw && ok "convert to qcow2 matches" || bad "convert qcow2"
qemu-img check -q back.qcow2 && ok "converted image clean" || bad "converted check"

run image resize back.qcow2 128M
expect "$(qemu-img info --output=json back.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" \
	"134217728" "resize grows the virtual size"

expect "$(status image check back.qcow2)" "0" "check: clean exits 0"
# A leak: raise the refcount of a cluster nothing references.
python3 - back.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
h = f.read(104)
cluster_bits = struct.unpack(">I", h[20:24])[0]
rt_off = struct.unpack(">Q", h[48:56])[0]
order = struct.unpack(">I", h[96:100])[0]
assert order == 4, "test expects 16-bit refcounts"
f.seek(rt_off); rb = struct.unpack(">Q", f.read(8))[0]
size = f.seek(0, 2)
spare = size >> cluster_bits  # first cluster past the end of the file
assert spare < (1 << cluster_bits) // 2, "image too large for this test"
f.seek(rb + 2 * spare); f.write(struct.pack(">H", 1))
PY
expect "$(status image check back.qcow2)" "3" "check: leaks only exits 3"
expect "$(status image check back.qcow2 --repair)" "0" "check --repair clears the leak"
qemu-img check -q back.qcow2 && ok "qemu-img agrees after repair" || bad "repair"
# Corruption: point the L1 table past the end of the file.
python3 -c "
import struct,sys
f=open('back.qcow2','r+b'); f.seek(40); f.write(struct.pack('>Q', 1<<40))"
expect "$(status image check back.qcow2)" "2" "check: corrupt exits 2"
grep -q "^vsmctl: " err || bad "check of a corrupt image says nothing"

# An image QEMU left dirty: lazy refcounts, qemu-io killed with SIGKILL
# after its writes. A real kill (not a patched header bit): qemu-io
# flushes after each write (writethrough), and with lazy refcounts a flush
# writes the L2 tables but not the refcount blocks, so the data clusters
# have refcount 0 and the dirty bit stays set. stdbuf lets us see each
# "wrote" line before the kill.
qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 16M
rm -f qio.out
stdbuf -oL qemu-io -c 'write -P 0xab 0 2M' -c 'write -P 0xcd 8M 1M' -c 'sleep 60000' \
	lazy.qcow2 >qio.out 2>&1 &
qio=$!
for i in $(seq 600); do [ "$(grep -c wrote qio.out 2>/dev/null)" = 2 ] && break; sleep 0.1; done
kill -9 $qio; wait $qio 2>/dev/null
dirty() { python3 -c "import sys; f=open('lazy.qcow2','rb'); f.seek(79); print(f.read(1)[0] & 1)"; }
expect "$(dirty)" "1" "killed qemu-io left the dirty bit"
qemu-img check -q lazy.qcow2 >/dev/null 2>&1; expect "$?" "2" "qemu-img: stale refcounts before repair"
expect "$("$vsmctl" image read lazy.qcow2 8388608 1 | od -An -tx1 | tr -d ' ')" "cd" "dirty image reads"
expect "$(printf 'x' | "$vsmctl" image write lazy.qcow2 0 >/dev/null 2>err; echo $?)" "1" \
	"write to the dirty image refused"
grep -q "repair" err && ok "refusal says how to repair: $(cat err)" || bad "refusal: $(cat err)"
expect "$(status image check lazy.qcow2)" "2" "check: dirty lazy image is corrupt"
expect "$(status image check lazy.qcow2 --repair)" "0" "check --repair repairs it"
expect "$(dirty)" "0" "dirty bit cleared"
qemu-img check -q lazy.qcow2 && ok "qemu-img: clean after repair" || bad "qemu-img after repair"
qemu-io -r -c 'read -P 0xab 0 2M' -c 'read -P 0xcd 8M 1M' lazy.qcow2 | grep -c '^read' >qio.n
expect "$(cat qio.n)" "2" "data written before the kill reads back"
printf 'after repair' | "$vsmctl" image write lazy.qcow2 4194304 2>err && ok "write after repair" ||
	bad "write after repair: $(cat err)"
expect "$("$vsmctl" image read lazy.qcow2 4194304 12)" "after repair" "read back the new write"
qemu-img check -q lazy.qcow2 && ok "qemu-img: clean after the write" || bad "qemu-img after write"
qemu-io -r -c 'read -P 0xab 0 2M' -c 'read -P 0xcd 8M 1M' lazy.qcow2 | grep -c '^read' >qio.n
expect "$(cat qio.n)" "2" "the write left QEMU's data intact"

[ "$(status image read top.raw)" != 0 ] && grep -q "^vsmctl: " err && ok "missing arguments refused" || bad "missing arguments accepted"
"$vsmctl" image create esc.qcow2 1M --backing ../../etc/passwd >/dev/null 2>err
grep -q "^vsmctl: .*" err && ok "escaping backing refused: $(cat err)" || bad "escaping backing accepted"

# Persistent bitmaps (QEMU's format): what we add, qemu-img lists; what
# qemu-img adds, we list; writes through vsmctl keep them valid for QEMU.
qemu-img create -q -f qcow2 bm.qcow2 16M
run image bitmap add bm.qcow2 b0
run image bitmap add bm.qcow2 fine --granularity 4K
run image bitmap add bm.qcow2 big --granularity 1M
run image bitmap disable bm.qcow2 big
qemu-img bitmap --add -g 512 bm.qcow2 q0
qemu-img check -q bm.qcow2 && ok "qemu-img: clean with bitmaps" || bad "bitmaps: qemu-img check"
qjson=$(qemu-img info --output=json bm.qcow2)
expect "$(python3 -c "import json,sys; print(' '.join('%s:%d:%s' % (b['name'], b['granularity'], ','.join(b['flags'])) for b in json.loads(sys.stdin.read())['format-specific']['data']['bitmaps']))" <<<"$qjson")" \
	"b0:65536:auto fine:4096:auto big:1048576: q0:512:auto" "qemu-img lists our bitmaps"
run --json image bitmap list bm.qcow2
expect "$(jget "' '.join('%s:%d:%d:%d' % (b['name'], b['granularity'], b['enabled'], b['in-use']) for b in j)")" \
	"b0:65536:1:0 fine:4096:1:0 big:1048576:0:0 q0:512:1:0" "bitmap list --json"
run image bitmap list bm.qcow2
expect "$(sed -n 3p <<<"$out")" "big granularity=1048576 disabled" "bitmap list text"
printf 'dirty' | "$vsmctl" image write bm.qcow2 65536 && ok "write with bitmaps" || bad "write with bitmaps"
qemu-img check -q bm.qcow2 && ok "qemu-img: clean after the write" || bad "bitmaps: check after write"
qemu-img bitmap --add --merge b0 bm.qcow2 copy && ok "qemu-img merges our bitmap" || bad "qemu-img merge"
run image bitmap enable bm.qcow2 big
run image bitmap clear bm.qcow2 fine
run image bitmap remove bm.qcow2 q0
run --json image bitmap list bm.qcow2
expect "$(jget "' '.join('%s:%d' % (b['name'], b['enabled']) for b in j)")" "b0:1 fine:1 big:1 copy:1" "after enable/clear/remove"
expect "$(status image bitmap add bm.qcow2 b0)" "1" "duplicate name refused"
grep -q "already exists" err && ok "duplicate message: $(cat err)" || bad "duplicate message: $(cat err)"
expect "$(status image bitmap add bm.qcow2 g --granularity 100)" "1" "bad granularity refused"
expect "$(status image bitmap remove bm.qcow2 nope)" "1" "unknown bitmap refused"
expect "$(status image bitmap frob bm.qcow2 x)" "1" "unknown bitmap command refused"
qemu-img check -q bm.qcow2 && ok "qemu-img: clean after bitmap changes" || bad "bitmaps: final check"
run image convert bm.qcow2 bm2.qcow2 --format qcow2 --bitmaps
expect "$(qemu-img info --output=json bm2.qcow2 | python3 -c "import json,sys; print(len(json.load(sys.stdin)['format-specific']['data'].get('bitmaps', [])))")" "4" "convert --bitmaps copies them"

# Datastore addresses (DS/CONTAINER:DEVICE, DS:NAME) next to local paths:
# a name with ':' that exists, or starts with '.', stays a local path.
export VSM_STATE_DIR=$tmp/state
mkdir ds1
run datastore add ds1 "file://$tmp/ds1"
run image import ds1 gold top.qcow2
run container create web --datastore ds1 --base d0=gold
printf 'via address' | "$vsmctl" image write ds1/web:d0 0 2>err && ok "write ds1/web:d0" || bad "write: $(cat err)"
expect "$("$vsmctl" image read ds1/web:d0 0 11)" "via address" "read ds1/web:d0"
expect "$(status image check ds1/web:d0)" "0" "check ds1/web:d0"
expect "$(status image check ds1:gold)" "0" "check ds1:gold"
run image export ds1 gold gold-out.qcow2
qemu-img compare -q top.qcow2 gold-out.qcow2 && ok "export == source" || bad "export differs"
qemu-img create -q -f qcow2 "./a:b.qcow2" 1M
expect "$(status image check a:b.qcow2)" "0" "an existing file named a:b.qcow2 is a path"
expect "$(status image check ./a:b.qcow2)" "0" "./a:b.qcow2 is a path"
for a in ds1/nope:d0 ds1/web:d9 ds1/..:d0 ds1/web: :gold ds1: nods:gold; do
	[ "$(status image read "$a" 0 1)" != 0 ] && grep -q "^vsmctl: " err &&
		ok "bad address $a: $(cat err)" || bad "bad address $a accepted"
done

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
