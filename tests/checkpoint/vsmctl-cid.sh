#!/bin/bash
# Content IDs on every layer and chain copy between datastores, through
# vsmctl (doc/chain-copy.md): golden images, checkpoint layers and tops in
# `container show --json`, the header extension against the record, a
# clone to another datastore that relinks to the golden image there, and
# a golden image written behind libvsm's back not being reused.
# usage: vsmctl-cid.sh PATH_TO_VSMCTL
set -u
vsmctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export VSM_STATE_DIR=$tmp/state
failures=0
checks=0
ok()  { checks=$((checks + 1)); echo "ok: $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
run() { if out=$("$vsmctl" "$@" 2>err); then ok "vsmctl $*"; else bad "vsmctl $* exited $?: $(cat err)"; fi; }
expect() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', want '$2'"; fi; }
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }
# chain of device d0 of container $1 as JSON in $out
chain() { run container show "$1" --json; }

# A 64 MiB image with 20 MiB of data: the golden image of both datastores.
qemu-img create -q -f qcow2 src.qcow2 64M
qemu-io -f qcow2 -c "write -P 0x5a 0 16M" -c "write -P 0x33 32M 4M" src.qcow2 >/dev/null
mkdir ds1 ds2 ds3
for d in ds1 ds2 ds3; do run datastore add $d "file://$tmp/$d"; done
for d in ds1 ds2 ds3; do run image import $d gold src.qcow2; done
g1=$("$vsmctl" image cid ds1/gold 2>/dev/null || "$vsmctl" image cid "$tmp/ds1/gold")
g2=$("$vsmctl" image cid "$tmp/ds2/gold")
[ -n "$g1" ] && ok "a golden image has a content ID after import ($g1)" || bad "golden image has no content ID"
expect "$g2" "$g1" "the same image imported on two datastores has the same content ID"
expect "${g1:14:1}" "8" "a golden image's ID is content-derived (UUID version 8)"
qemu-img check -q "$tmp/ds1/gold" && ok "qemu-img check: golden image with its ID clean" || bad "check gold"

run container create web --datastore ds1 --base d0=gold
chain web
expect "$(jget 'len(j["devices"][0]["chain"])')" "2" "show --json: top and golden image"
expect "$(jget 'j["devices"][0]["chain"][0]["cid"], j["devices"][0]["chain"][0]["writable"]')" \
	"None True" "a writable top has no content ID"
expect "$(jget 'j["devices"][0]["chain"][1]["cid"], j["devices"][0]["chain"][1]["golden"], j["devices"][0]["chain"][1]["key"]')" \
	"$g1 True gold" "the golden image in the chain with its ID"

printf 'first' | "$vsmctl" image write ds1/web:d0 0 2>err && ok "write to the top" || bad "write: $(cat err)"
run checkpoint create web c1
chain web
expect "$(jget 'len(j["devices"][0]["chain"])')" "3" "after a checkpoint: top, layer, golden"
c1=$(jget 'j["devices"][0]["chain"][1]["cid"]')
k1=$(jget 'j["devices"][0]["chain"][1]["key"]')
expect "$(jget 'j["devices"][0]["chain"][1]["checkpoint"], j["devices"][0]["chain"][0]["cid"]')" \
	"c1 None" "the frozen layer belongs to c1; the new top has no ID"
expect "$("$vsmctl" image cid "$tmp/ds1/$k1" 2>&1)" "$c1" "the layer's header carries the record's content ID"
run --json checkpoint list web
expect "$(jget '[l["cid"] for c in j for l in c.get("layers", [])][0] if isinstance(j, list) else ""' 2>/dev/null)" "$c1" \
	"checkpoint list gives the same ID" 
qemu-img check -q "$tmp/ds1/$k1" && ok "qemu-img check: frozen layer clean" || bad "check layer"

# A fresh process (a reopened context) reads the same IDs.
chain web
expect "$(jget 'j["devices"][0]["chain"][1]["cid"], j["devices"][0]["chain"][2]["cid"]')" \
	"$c1 $g1" "IDs stable across reopen"
run container show web
grep -q "$c1 .*checkpoint c1" <<<"$out" && grep -q "$g1 .*golden" <<<"$out" &&
	ok "text form shows the chain with IDs" || bad "text form: $out"

printf 'second' | "$vsmctl" image write ds1/web:d0 65536 2>err && ok "write to the top" || bad "write: $(cat err)"
run checkpoint create web c2
chain web
c2=$(jget 'j["devices"][0]["chain"][1]["cid"]')
k2=$(jget 'j["devices"][0]["chain"][1]["key"]')
[ -n "$c2" ] && [ "$c2" != "None" ] && [ "$c2" != "$c1" ] &&
	ok "the written top, frozen, has a new ID" || bad "c2 cid '$c2'"
expect "$(jget 'j["devices"][0]["chain"][2]["cid"], j["devices"][0]["chain"][3]["cid"]')" \
	"$c1 $g1" "the layers below keep theirs"
expect "$("$vsmctl" image cid "$tmp/ds1/$k2" 2>&1)" "$c2" "c2's header carries its ID"

# Clone to ds2: the golden image there is relinked to, the two layers copied.
run --json container clone web w2 --checkpoint c2 --datastore ds2
expect "$(jget 'j["layers-reused"], j["layers-copied"]')" "1 2" "clone to ds2: golden reused, 2 layers copied"
bytes=$(jget 'j["bytes-copied"]')
[ "$bytes" -lt 1048576 ] && ok "bytes copied ($bytes) far below the 20 MiB golden image" ||
	bad "clone copied $bytes bytes"
chain w2
expect "$(jget 'j["datastore"], len(j["devices"][0]["chain"])')" "ds2 4" "w2 on ds2: top, c2, c1, golden"
expect "$(jget 'j["devices"][0]["chain"][3]["key"], j["devices"][0]["chain"][3]["cid"]')" "gold $g1" \
	"w2 stands on ds2's own golden image"
expect "$(jget 'j["devices"][0]["chain"][1]["cid"], j["devices"][0]["chain"][2]["cid"]')" "$c2 $c1" \
	"the copied layers keep their IDs"
w2k=$(jget 'j["devices"][0]["chain"][1]["key"]')
expect "$("$vsmctl" image cid "$tmp/ds2/$w2k" 2>&1)" "$c2" "copied layer's header carries its ID"
qemu-img compare -q "$tmp/ds1/$k2" "$tmp/ds2/$w2k" && ok "qemu-img compare: clone's c2 == source's c2" ||
	bad "clone differs"
qemu-img check -q "$tmp/ds2/$w2k" && ok "qemu-img check: copied layer clean" || bad "check copied"

# A golden image written behind libvsm's back keeps its header ID (QEMU
# keeps extensions); it is found to differ and copied over, not reused.
qemu-io -f qcow2 -c "write -P 0x77 1M 64k" "$tmp/ds3/gold" >/dev/null
expect "$("$vsmctl" image cid "$tmp/ds3/gold")" "$g1" "qemu-io kept ds3's golden image's stale ID"
run --json container clone web w3 --checkpoint c2 --datastore ds3
expect "$(jget 'j["layers-reused"], j["layers-copied"]')" "0 3" "damaged golden image not reused: 3 layers copied"
bytes=$(jget 'j["bytes-copied"]')
[ "$bytes" -ge 20971520 ] && ok "the golden image's data was copied ($bytes bytes)" || bad "copied $bytes"
chain w3
w3k=$(jget 'j["devices"][0]["chain"][1]["key"]')
[ "$(jget 'j["devices"][0]["chain"][3]["key"]')" != "gold" ] && ok "w3 does not stand on the damaged gold" ||
	bad "w3 on the damaged golden image"
qemu-img compare -q "$tmp/ds1/$k2" "$tmp/ds3/$w3k" && ok "qemu-img compare: w3's c2 == source's" ||
	bad "w3 differs"

# Export/import onto a datastore with the golden image: relinked too.
run export web web.vsmb --checkpoint c2
mkdir ds4 && run datastore add ds4 "file://$tmp/ds4" && run image import ds4 gold src.qcow2
run --json import web.vsmb --datastore ds4 --name w4
chain w4
expect "$(jget 'j["devices"][0]["chain"][3]["key"], j["devices"][0]["chain"][3]["golden"]')" "gold True" \
	"import relinks to the target's golden image"
w4k=$(jget 'j["devices"][0]["chain"][1]["key"]')
qemu-img compare -q "$tmp/ds1/$k2" "$tmp/ds4/$w4k" && ok "qemu-img compare: imported == source" ||
	bad "import differs"
# A second clone onto ds2 reuses everything that is there now.
run --json container clone web w5 --checkpoint c2 --datastore ds2
expect "$(jget 'j["layers-reused"], j["layers-copied"], j["bytes-copied"]')" "3 0 0" \
	"clone again to ds2: every layer reused, nothing copied"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
