#!/bin/bash
# Two hosts creating and destroying containers at once on one iSCSI
# datastore, each host in a network namespace of its own and tgtd (no
# COMPARE AND WRITE: the metadata lock is decided by Disk Paxos) in a third.
# Runs tests/test_concurrency.c's two-host cases with distinct and with the
# same names; it counts what was lost, duplicated and orphaned (expected:
# 0). Namespaces, tgtd and temp files are removed in a trap.
#
# usage: concurrent-run.sh TEST-CONCURRENCY
set -euo pipefail

TEST=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root for network namespaces"
for p in ip tgtd tgtadm; do command -v "$p" >/dev/null || fail "'$p' is not installed"; done

TAG=vsc$$
T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-conc.XXXXXX")
LUNS=${VSM_TEST_LUNS:-150}

cleanup() {
	local rc=$?
	set +e
	netns_down
	[ $rc -ne 0 ] && [ -f "$T/tgtd.log" ] && tail -15 "$T/tgtd.log" >&2
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT INT TERM
. "$(dirname "$0")/netns-lib.sh"

netns_up
tgt_up
IQN=iqn.2026-01.org.libvsm.test:concurrent
"${TA[@]}" --mode target --op new --tid 1 --targetname "$IQN"
"${TA[@]}" --mode target --op bind --tid 1 --initiator-address ALL
# LUN 1 holds the metadata; the rest are 1 MiB devices (a container takes
# two: its disk and its VM-state area).
truncate -s 128M "$T/lun1.img"
"${TA[@]}" --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$T/lun1.img"
for l in $(seq 2 "$LUNS"); do
	truncate -s 1M "$T/lun$l.img"
	"${TA[@]}" --mode logicalunit --op new --tid 1 --lun "$l" --backing-store "$T/lun$l.img"
done

INI=iqn.2026-01.org.libvsm.test
export VSM_TEST_NETNS_0=$NS_A VSM_TEST_NETNS_1=$NS_B VSM_TEST_NETNS_CHECK=$NS_A
export VSM_TEST_URI_0="iscsi://192.0.2.2:3260/$IQN?initiator=$INI:host-a&timeout=20"
export VSM_TEST_URI_1="iscsi://192.0.2.6:3260/$IQN?initiator=$INI:host-b&timeout=20"
export VSM_TEST_URI_CHECK="iscsi://192.0.2.2:3260/$IQN?initiator=$INI:checker&timeout=20"
export VSM_LEASE_TIMEOUT_MS=3000 VSM_LEASE_RENEW_MS=300
# Its own sizes, not the file runs' (a container takes two of the LUNs).
export VSM_TEST_ROUNDS=${VSM_TEST_ISCSI_ROUNDS:-5} VSM_TEST_NAMES=${VSM_TEST_ISCSI_NAMES:-10}
status=0
for c in distinct same; do
	CK_RUN_CASE=$c "$TEST" || status=1
done
exit $status
