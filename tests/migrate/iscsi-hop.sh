#!/bin/bash
# Offline migration across backends: file -> iSCSI (a managed target of
# the tgtd that tests/iscsi/tgt-run.sh started on 127.0.0.1) -> file,
# with two checkpoints. At every hop each device reads (through libvsm)
# what it read before the first hop (qemu-img compare of raw dumps), the
# checkpoints are there, and the datastore left holds no device.
#
# usage: tgt-run.sh iscsi-hop.sh VSMCTL
set -euo pipefail
V=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export VSM_STATE_DIR=$T/state
mkdir -p "$T/ds1" "$T/ds2" "$T/ref"
fail() { echo "FAIL: $*" >&2; exit 1; }
MAN=$VSM_TEST_TGT_DIR/managed
ISCSI="iscsi://127.0.0.1:$VSM_TEST_ISCSI_PORT/$VSM_TEST_IQN:managed?mode=managed&tid=3&dir=$MAN&control-port=$VSM_TEST_TGT_CPORT"

dsof() { $V --json container show vm | python3 -c 'import json,sys; print(json.load(sys.stdin)["datastore"])'; }
dump() { $V image read "$(dsof)/vm:$1" 0 8388608 >"$2"; }
same() { # TAG: every device reads like the references TAG
	for d in d0 d1; do
		dump "$d" "$T/now"
		qemu-img compare -q -f raw -F raw "$T/now" "$T/ref/$1.$d" ||
			fail "vm/$d on $(dsof) differs from $1"
	done
}
ckpts() { [ "$($V --json checkpoint list vm | grep -c '"name"')" = 2 ] || fail "checkpoints on $(dsof)"; }

$V datastore add ds1 "file://$T/ds1" >/dev/null
$V datastore add ds2 "file://$T/ds2" >/dev/null
$V datastore add san "$ISCSI" >/dev/null
$V container create vm --datastore ds1 --disk d0:8M --disk d1:8M:qcow2 --thin >/dev/null
head -c 300000 /dev/urandom | $V image write ds1/vm:d0 65536 >/dev/null
head -c 200000 /dev/urandom | $V image write ds1/vm:d1 1048576 >/dev/null
$V checkpoint create vm c1 >/dev/null
for d in d0 d1; do dump $d "$T/ref/c1.$d"; done
head -c 100000 /dev/urandom | $V image write ds1/vm:d1 3000000 >/dev/null
$V checkpoint create vm c2 >/dev/null
head -c 100000 /dev/urandom | $V image write ds1/vm:d0 5000000 >/dev/null
for d in d0 d1; do dump $d "$T/ref/top.$d"; done

files_before=$(ls "$MAN" | wc -l)
$V --json migrate vm --datastore san | tail -1 | grep -q '"to":"san"' || fail "file -> iSCSI"
[ "$(dsof)" = san ] || fail "not on san"
[ -z "$(ls "$T/ds1")" ] || fail "ds1 not emptied: $(ls "$T/ds1")"
[ "$(ls "$MAN" | wc -l)" -gt "$files_before" ] || fail "nothing written to the target"
same top; ckpts
# Backing references are LUN keys, not paths: check each image alone.
for f in "$MAN"/*.qcow2; do
	qemu-img check -q "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$f\"},\"backing\":null}" ||
		fail "qemu-img check $f"
done
$V datastore check san --grace 0 >/dev/null || fail "orphans on san"

$V migrate vm --datastore ds2 >/dev/null || fail "iSCSI -> file"
[ "$(dsof)" = ds2 ] || fail "not on ds2"
[ "$(ls "$MAN" | wc -l)" = "$files_before" ] || fail "iSCSI devices left: $(ls "$MAN")"
same top; ckpts
$V checkpoint revert vm c1 >/dev/null
same c1
for f in "$T"/ds2/*.qcow2; do qemu-img check -q "$f" || fail "qemu-img check $f"; done
echo "ok: file -> iSCSI -> file"
