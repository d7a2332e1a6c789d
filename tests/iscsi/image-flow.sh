#!/bin/bash
# `vsmctl image` on an iSCSI datastore served by the tgtd that tgt-run.sh
# started (tgt-run.sh stops it by pid and removes its temp dir, on
# success and failure): a golden image made by qemu-img is imported onto
# the target, a container is made a linked clone of it with --base, the
# clone is written through vsmctl, and its device is read, mapped and
# checked; the golden image is exported again and compared with the
# original by qemu-img, the clone's LUN is read by qemu-img, and bad
# addresses fail with a clear message.
#
# usage: tgt-run.sh bash image-flow.sh VSMCTL
set -uo pipefail
V=$1
T=$VSM_TEST_TGT_DIR
S=$T/image-state
URI="iscsi://127.0.0.1:$VSM_TEST_ISCSI_PORT/$VSM_TEST_IQN:pool"
failures=0
checks=0
ok()  { checks=$((checks + 1)); echo "ok: $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
run() { if out=$("$V" --state "$S" "$@" 2>"$T/err"); then ok "vsmctl $*"; else bad "vsmctl $* exited $?: $(cat "$T/err")"; fi; }
expect() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', want '$2'"; fi; }
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }
# refuse WHAT-THE-MESSAGE-SAYS ARGS...: non-zero exit and that message.
refuse() {
	local want=$1 rc
	shift
	"$V" --state "$S" "$@" >/dev/null 2>"$T/err" </dev/null
	rc=$?
	if [ $rc -ne 0 ] && grep -q -- "$want" "$T/err"; then
		ok "refused: vsmctl $* ($(head -1 "$T/err"))"
	else
		bad "vsmctl $*: exit $rc, stderr '$(cat "$T/err")', want non-zero and '$want'"
	fi
}

cd "$T" || exit 1
# The golden image: qcow2 by qemu-img, with data in two places and a
# zero cluster, then a qcow2 overlay on it that import must flatten.
qemu-img create -q -f qcow2 gold-base.qcow2 16M
qemu-io -c "write -P 0x5a 1M 128k" -c "write -P 0x33 9M 4k" -c "write -z 2M 64k" \
	gold-base.qcow2 >/dev/null || bad "qemu-io"
qemu-img create -q -f qcow2 -b gold-base.qcow2 -F qcow2 gold.qcow2
qemu-io -c "write -P 0x77 12M 64k" gold.qcow2 >/dev/null || bad "qemu-io overlay"

run datastore add san "$URI"
run host add h1
run host link h1 san
run image import san gold gold.qcow2
run --json image info san:gold
expect "$(jget 'j[0]["format"], j[0]["virtual-size"], "backing-filename" in j[0]')" \
	"qcow2 16777216 False" "golden image on the LUN: qcow2, 16 MiB, flattened"
run image check san:gold
refuse "exists" image import san gold gold.qcow2
refuse "is not 1-64" image import san "bad/name" gold.qcow2

run container create web --datastore san --base d0=gold
expect "$("$V" --state "$S" image read san/web:d0 1M 4)" "ZZZZ" "the clone reads the golden image"
expect "$("$V" --state "$S" image read san/web:d0 12M 4)" "wwww" "and what import flattened"
printf 'written through vsmctl' | "$V" --state "$S" image write san/web:d0 4M 2>"$T/err" &&
	ok "image write san/web:d0" || bad "image write: $(cat "$T/err")"
expect "$("$V" --state "$S" image read san/web:d0 4M 22)" "written through vsmctl" "read back"
run --json image map san/web:d0
expect "$(jget 'sorted(set(e["depth"] for e in j if e["data"]))')" "[0, 1]" \
	"map: the write at depth 0, the golden data at depth 1"
run image check san/web:d0
expect "$(head -1 <<<"$out")" "no errors were found on the image" "check of the clone's device"
run --json image info san/web:d0
expect "$(jget 'j[0]["backing-filename"], len(j)')" "gold 2" "the clone's chain is the golden image"

# qemu-img as the independent reader of the clone's LUN: the backing
# file name is a device key, so give qemu-img the golden LUN's file.
clone=$(grep -l "gold" pool/lun*.img 2>/dev/null | while read -r f; do
	qemu-img info -f qcow2 "$f" 2>/dev/null | grep -q "^backing file: gold" && echo "$f"; done | head -1)
golden=
for f in pool/lun*.img; do
	[ "$f" = "$clone" ] && continue
	if qemu-img info -f qcow2 "$f" >/dev/null 2>&1 &&
	   qemu-img compare -q -f qcow2 -F qcow2 gold.qcow2 "$f" 2>/dev/null; then golden=$f; fi
done
if [ -n "$clone" ] && [ -n "$golden" ]; then
	qemu-img check -q -f qcow2 "$golden" && ok "qemu-img check: golden LUN clean" || bad "golden LUN"
	# The clone's data over the golden image, read by qemu-img.
	qemu-img convert -f qcow2 -O raw "$golden" golden.raw
	expect "$(dd if=golden.raw bs=1 skip=$((1 << 20)) count=4 status=none)" "ZZZZ" \
		"qemu-img reads the golden LUN"
	cp "$clone" clone.qcow2
	qemu-img rebase -u -f qcow2 -b "$T/$golden" -F qcow2 clone.qcow2
	qemu-img convert -f qcow2 -O raw clone.qcow2 clone.raw
	expect "$(dd if=clone.raw bs=1 skip=$((4 << 20)) count=22 status=none)" \
		"written through vsmctl" "qemu-img reads the clone's write"
	expect "$(dd if=clone.raw bs=1 skip=$((9 << 20)) count=4 status=none)" "3333" \
		"qemu-img reads the golden data through the clone"
else
	bad "cannot find the clone's and the golden image's LUN files (clone '$clone', golden '$golden')"
fi

run image export san gold gold-out.qcow2
qemu-img compare -q gold.qcow2 gold-out.qcow2 && ok "qemu-img compare: export == original" ||
	bad "exported golden image differs"
qemu-img check -q gold-out.qcow2 && ok "exported image clean" || bad "exported image"
run image export san gold gold-out.raw --format raw
qemu-img compare -q -f qcow2 -F raw gold.qcow2 gold-out.raw && ok "raw export == original" ||
	bad "raw export differs"
refuse "already exists" image export san gold gold-out.qcow2

# Read-write opens a container's owner or users could not expect.
refuse "is read by container 'web'" image write san:gold 0
refuse "not supported on this image" image commit san/web:d0
run attach web h1
run deploy web d0
refuse "is deployed" image write san/web:d0 0
expect "$("$V" --state "$S" image read san/web:d0 4M 7)" "written" "read-only open while deployed"
run undeploy web d0
run detach web

# Bad addresses: a clear message and a non-zero exit.
refuse "container 'nope' does not exist" image read san/nope:d0 0 1
refuse "has no device 'd9'" image map san/web:d9
refuse "may not be '.' or '..'" image check san/..:d0
refuse "may not be '.' or '..'" image read san:.. 0 1
refuse "the device is empty" image read san/web: 0 1
refuse "the container is empty" image read san/:d0 0 1
refuse "the datastore is empty" image read :gold 0 1
refuse "the image name is empty" image info san:
refuse "may not hold" image info san/web:d0/x
refuse "not registered" image info nosuch:gold
refuse "does not exist\|not claimed\|not found\|No such" image info san:missing

run container destroy web
run --json image info san:gold
ok "golden image outlives the container"

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
