#!/bin/bash
# `vsmctl image copy|freeze|cid` end to end: a 4-layer chain copied whole,
# then onto parents already in the target directory; qemu-img is the
# independent reader. usage: vsmctl-copy.sh PATH_TO_VSMCTL
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
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }
cl=65536
# fill CHAR CLUSTERS: that many clusters of one byte
fill() { head -c $(($2 * cl)) /dev/zero | tr '\0' "$1"; }

# chain DIR: base (2 clusters), l1 (1), l2 (2), top (1); all but the top frozen
chain() {
	mkdir -p "$1"
	"$vsmctl" image create "$1/base.qcow2" 8M --cluster-size $cl &&
	fill A 2 | "$vsmctl" image write "$1/base.qcow2" 0 &&
	"$vsmctl" image create "$1/l1.qcow2" --backing base.qcow2 --backing-format qcow2 &&
	fill B 1 | "$vsmctl" image write "$1/l1.qcow2" 1048576 &&
	"$vsmctl" image create "$1/l2.qcow2" --backing l1.qcow2 --backing-format qcow2 &&
	fill C 2 | "$vsmctl" image write "$1/l2.qcow2" 2097152 &&
	"$vsmctl" image create "$1/top.qcow2" --backing l2.qcow2 --backing-format qcow2 &&
	fill D 1 | "$vsmctl" image write "$1/top.qcow2" 3145728 &&
	"$vsmctl" image freeze "$1/base.qcow2" >/dev/null &&
	"$vsmctl" image freeze "$1/l1.qcow2" >/dev/null &&
	"$vsmctl" image freeze "$1/l2.qcow2" >/dev/null
}

chain a && ok "chain made" || bad "chain"
qemu-img check -q a/l2.qcow2 && ok "qemu-img check: a frozen layer is clean" || bad "check frozen"
cid_l1=$("$vsmctl" image cid a/l1.qcow2)
[ ${#cid_l1} = 36 ] && ok "l1 has a content ID" || bad "l1 cid '$cid_l1'"
"$vsmctl" image cid a/top.qcow2 >/dev/null 2>err && bad "the top has an ID" ||
	grep -q "no content ID" err && ok "the top has none" || bad "cid message: $(cat err)"

# 1. Nothing to reuse: every layer is copied (the target directory must exist).
"$vsmctl" image copy a/top.qcow2 b/top.qcow2 >/dev/null 2>err && bad "copy into a missing dir" ||
	grep -q "No such file" err && ok "missing target directory refused" || bad "$(cat err)"
mkdir b
run image copy a/top.qcow2 b/top.qcow2 --json
expect "$(jget 'j["bytes-copied"], j["layers-copied"], j["parents-reused"]')" \
	"$((6 * cl)) 4 0" "whole chain: bytes, layers, reused"
qemu-img compare -q a/top.qcow2 b/top.qcow2 && ok "qemu-img compare: identical" || bad "compare whole"
for f in base l1 l2 top; do
	qemu-img check -q "b/$f.qcow2" && ok "qemu-img check b/$f" || bad "check b/$f"
done
expect "$("$vsmctl" image cid b/l1.qcow2)" "$cid_l1" "a copied layer keeps its content ID"

# 2. l1 and base already in the target directory: only l2 and the top.
mkdir c
run image copy a/l1.qcow2 c/l1.qcow2
sum_before=$(md5sum c/l1.qcow2 c/base.qcow2)
run image copy a/top.qcow2 c/top.qcow2 --reuse-parents c --json
expect "$(jget 'j["bytes-copied"], j["layers-copied"], j["parents-reused"]')" \
	"$((3 * cl)) 2 2" "reuse: bytes of l2 and the top only, 2 parents reused"
qemu-img compare -q a/top.qcow2 c/top.qcow2 && ok "qemu-img compare after reuse: identical" ||
	bad "compare reuse"
qemu-img check -q c/top.qcow2 && qemu-img check -q c/l2.qcow2 && ok "copied layers clean" ||
	bad "check reuse"
qemu-img info --backing-chain c/top.qcow2 | grep -qx "image: c/l1.qcow2" &&
	ok "qemu-img info --backing-chain: relinked onto c/l1.qcow2" || bad "backing chain"
expect "$(md5sum c/l1.qcow2 c/base.qcow2)" "$sum_before" "reused parents not written"

# Text output.
mkdir t
"$vsmctl" image copy a/l1.qcow2 t/l1.qcow2 >/dev/null
out=$("$vsmctl" image copy a/top.qcow2 t/top.qcow2 --reuse-parents t)
expect "$out" "copied 196608 bytes (192.0 KiB), 2 layers copied, 2 parents reused" "text output"

# 3. Same names and bytes, other content IDs: refused, nothing written.
chain d
rm d/l2.qcow2 d/top.qcow2
sum_before=$(md5sum d/*)
"$vsmctl" image copy a/top.qcow2 d/top.qcow2 --reuse-parents d >/dev/null 2>err &&
	bad "copy over another l1" || ok "copy refused"
grep -q "already exists" err && ok "message: $(cat err)" || bad "message: $(cat err)"
expect "$(md5sum d/*)" "$sum_before" "nothing created or changed"

# 4. A reuse directory that is not the target's.
mkdir e
"$vsmctl" image copy a/top.qcow2 e/top.qcow2 --reuse-parents c >/dev/null 2>err &&
	bad "foreign reuse dir" || grep -q "reuse directory" err && ok "foreign reuse dir refused" ||
	bad "reuse dir message: $(cat err)"

# 5. A damaged source: refused with its name, nothing left.
mkdir f
cp a/*.qcow2 f/
python3 - f/l2.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(40); l1 = struct.unpack(">Q", f.read(8))[0]
f.seek(40); f.write(struct.pack(">Q", l1 + 512))
PY
mkdir g
"$vsmctl" image copy f/top.qcow2 g/top.qcow2 >/dev/null 2>err && bad "damaged copied" ||
	grep -q "l2.qcow2" err && ok "damaged source refused: $(cat err)" || bad "damaged: $(cat err)"
expect "$(ls g)" "" "nothing left after the refusal"

echo "$checks checks, $failures failures"
[ "$failures" = 0 ]
