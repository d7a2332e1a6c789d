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
NS_T=$TAG-t NS_A=$TAG-a NS_B=$TAG-b
T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-conc.XXXXXX")
TGTD_PID= CPORT=
LUNS=${VSM_TEST_LUNS:-150}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$TGTD_PID" ] && kill -0 "$TGTD_PID" 2>/dev/null; then
		ip netns exec "$NS_T" tgtadm -C "$CPORT" --lld iscsi --mode target --op delete \
			--force --tid 1 >/dev/null 2>&1
		ip netns exec "$NS_T" tgtadm -C "$CPORT" --op delete --mode system >/dev/null 2>&1
		for _ in $(seq 50); do kill -0 "$TGTD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$TGTD_PID" 2>/dev/null && echo "tgtd did not stop; killing it" >&2
		kill -KILL "$TGTD_PID" 2>/dev/null
		wait "$TGTD_PID" 2>/dev/null
	fi
	[ -n "$CPORT" ] && rm -f "/var/run/tgtd/socket.$CPORT" "/var/run/tgtd/socket.$CPORT.lock"
	for ns in "$NS_A" "$NS_B" "$NS_T"; do ip netns del "$ns" 2>/dev/null; done
	[ $rc -ne 0 ] && [ -f "$T/tgtd.log" ] && tail -15 "$T/tgtd.log" >&2
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT INT TERM

ip netns add "$NS_T"
ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add "$TAG-a0" netns "$NS_A" type veth peer name "$TAG-ta" netns "$NS_T"
ip link add "$TAG-b0" netns "$NS_B" type veth peer name "$TAG-tb" netns "$NS_T"
ip -n "$NS_A" addr add 192.0.2.1/30 dev "$TAG-a0"
ip -n "$NS_T" addr add 192.0.2.2/30 dev "$TAG-ta"
ip -n "$NS_B" addr add 192.0.2.5/30 dev "$TAG-b0"
ip -n "$NS_T" addr add 192.0.2.6/30 dev "$TAG-tb"
for ns in "$NS_A" "$NS_B" "$NS_T"; do ip -n "$ns" link set lo up; done
ip -n "$NS_A" link set "$TAG-a0" up
ip -n "$NS_B" link set "$TAG-b0" up
ip -n "$NS_T" link set "$TAG-ta" up
ip -n "$NS_T" link set "$TAG-tb" up

for _ in $(seq 100); do
	CPORT=$((1000 + RANDOM % 30000))
	[ ! -e "/var/run/tgtd/socket.$CPORT" ] && break
done
ip netns exec "$NS_T" tgtd -f -C "$CPORT" --iscsi portal=0.0.0.0:3260 >"$T/tgtd.log" 2>&1 &
TGTD_PID=$!
TA=(ip netns exec "$NS_T" tgtadm -C "$CPORT" --lld iscsi)
for _ in $(seq 100); do "${TA[@]}" --mode target --op show >/dev/null 2>&1 && break; sleep 0.05; done
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
export VSM_TEST_ROUNDS=${VSM_TEST_ROUNDS:-5} VSM_TEST_NAMES=${VSM_TEST_NAMES:-10}
status=0
for c in distinct same; do
	CK_RUN_CASE=$c "$TEST" || status=1
done
exit $status
