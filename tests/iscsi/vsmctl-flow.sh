#!/bin/bash
# The demo flow with vsmctl on an iSCSI datastore served by the tgtd that
# tgt-run.sh started: create -> attach -> deploy -> rescan from a second
# catalog -> undeploy -> detach -> destroy, raw and qcow2 devices.
#
# usage: tgt-run.sh vsmctl-flow.sh VSMCTL
set -euo pipefail
V=$1
S=$VSM_TEST_TGT_DIR/vsmctl-state
URI="iscsi://127.0.0.1:$VSM_TEST_ISCSI_PORT/$VSM_TEST_IQN:pool"
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "+ vsmctl $*"; "$V" --state "$S" "$@"; }

step datastore add san "$URI"
step host add h1
step host link h1 san
step container create web --datastore san --disk d0:8M --disk d1:8M:qcow2
step attach web h1
LOC=$(step deploy web d1 | tail -1)
case "$LOC" in
iscsi://127.0.0.1:"$VSM_TEST_ISCSI_PORT"/"$VSM_TEST_IQN":pool/[0-9]*) ;;
*) fail "locator '$LOC'" ;;
esac
LUN=${LOC##*/}
qemu-img check -q -f qcow2 "$VSM_TEST_TGT_DIR/pool/lun$LUN.img" || fail "qemu-img check of LUN $LUN"
"$V" --state "$S" --json container show web | grep -q "protocol='iscsi'" || fail "no iSCSI disk XML"
# A second catalog rebuilds its view from the target.
"$V" --state "$S-2" datastore add san "$URI" >/dev/null
"$V" --state "$S-2" container show web | grep -q "d1 .*qcow2" || fail "rescan does not show d1"
step undeploy web d1
step detach web
step container destroy web
"$V" --state "$S" datastore show san | grep -q "^free: *125829120" ||
	fail "LUNs not released: $("$V" --state "$S" datastore show san)"
echo "ok: vsmctl flow on iSCSI"
