#!/bin/bash
# Two hosts and a target in three network namespaces (veth pairs, 192.0.2.x
# addresses that exist only inside them): tgtd runs in the target's
# namespace, each host runs vsmctl in its own. Both open the datastore;
# host A attaches a container and keeps its lease with `vsmctl agent`;
# host B is refused. A's link goes down: A's lease lapses and B takes
# over, after the lease timeout and never before; with the link back, A is
# fenced off. Namespaces, processes and temp files are removed in a trap.
#
# usage: netns-run.sh VSMCTL
set -euo pipefail

VSMCTL=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root for network namespaces"
for p in ip tgtd tgtadm; do command -v "$p" >/dev/null || fail "'$p' is not installed"; done

TAG=vsm$$
T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-netns.XXXXXX")
AGENT_PID=
TIMEOUT_MS=3000
RENEW_MS=300

cleanup() {
	local rc=$?
	set +e
	[ -n "$AGENT_PID" ] && kill -KILL "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	netns_down
	if [ $rc -ne 0 ]; then
		for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -15 "$f" >&2; }; done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT INT TERM
. "$(dirname "$0")/netns-lib.sh"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

netns_up
tgt_up
IQN=iqn.2026-01.org.libvsm.test:netns
"${TA[@]}" --mode target --op new --tid 1 --targetname "$IQN"
"${TA[@]}" --mode target --op bind --tid 1 --initiator-address ALL
for l in 1 2 3; do
	truncate -s 16M "$T/lun$l.img"
	"${TA[@]}" --mode logicalunit --op new --tid 1 --lun "$l" --backing-store "$T/lun$l.img"
done

# Host A formats the datastore with short lease timings.
A=(ip netns exec "$NS_A" env VSM_LEASE_TIMEOUT_MS=$TIMEOUT_MS VSM_LEASE_RENEW_MS=$RENEW_MS
   VSM_ISCSI_INITIATOR=iqn.2026-01.org.libvsm.test:host-a "$VSMCTL" --state "$T/state-a")
B=(ip netns exec "$NS_B" env VSM_ISCSI_INITIATOR=iqn.2026-01.org.libvsm.test:host-b
   "$VSMCTL" --state "$T/state-b")
"${A[@]}" datastore add san "iscsi://192.0.2.2:3260/$IQN?timeout=2" >/dev/null
"${A[@]}" host add ha >/dev/null
"${A[@]}" host link ha san >/dev/null
"${A[@]}" container create web --datastore san --disk d0:4M >/dev/null
"${A[@]}" attach web ha >/dev/null
"${A[@]}" agent --host ha >"$T/agent.log" 2>&1 &
AGENT_PID=$!

"${B[@]}" datastore add san "iscsi://192.0.2.6:3260/$IQN?timeout=2" >/dev/null
"${B[@]}" host add hb >/dev/null
"${B[@]}" host link hb san >/dev/null
sleep 1
if "${B[@]}" attach web hb >"$T/b-refused.log" 2>&1; then
	fail "host B attached while A holds the lease"
fi
grep -q "ha" "$T/b-refused.log" || fail "refusal does not name host A: $(cat "$T/b-refused.log")"
echo "ok: B refused while A's heartbeat moves"

# Cut A off from the target.
ip -n "$NS_A" link set "$TAG-a0" down
T_DOWN=$(now_ms)
# A fresh vsmctl cannot know for how long the heartbeat has stood still
# before it started looking: a plain attach is refused, and attach
# --takeover watches the heartbeat for the timeout, then takes over.
if "${B[@]}" attach web hb >"$T/b-attach.log" 2>&1; then
	fail "B attached at once after A's link went down"
fi
grep -q "ha" "$T/b-attach.log" || fail "refusal does not name host A: $(cat "$T/b-attach.log")"
"${B[@]}" attach web hb --takeover >"$T/b-takeover.log" 2>&1 ||
	fail "takeover failed: $(cat "$T/b-takeover.log")"
T_OK=$(now_ms)
ELAPSED=$((T_OK - T_DOWN))
echo "ok: B took over $ELAPSED ms after A's link went down (lease timeout $TIMEOUT_MS ms)"
# A's last heartbeat landed at most one renewal before the link went down.
[ "$ELAPSED" -ge $((TIMEOUT_MS - RENEW_MS)) ] ||
	fail "takeover $ELAPSED ms after the link went down, before the lease timeout"

# With its link back, A may no longer act for the container.
ip -n "$NS_A" link set "$TAG-a0" up
kill -TERM "$AGENT_PID" 2>/dev/null || true
wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=
if "${A[@]}" deploy web d0 >"$T/a-fenced.log" 2>&1; then
	fail "host A deployed after losing its lease"
fi
echo "ok: A is fenced off: $(tail -1 "$T/a-fenced.log")"
"${B[@]}" deploy web d0 >/dev/null
"${B[@]}" container destroy web --force >/dev/null
echo "ok: B deploys and destroys"
