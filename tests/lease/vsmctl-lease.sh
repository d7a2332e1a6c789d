#!/bin/bash
# vsmctl's lease commands: attach refused while another host's agent keeps
# its heartbeat, `lease status --json`, the agent's JSON event lines and
# clean SIGTERM exit, `attach --takeover` after the agent stopped, and the
# old host's late write refused.
set -u
VSMCTL=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-lease-cli.XXXXXX")
AGENT=
cleanup() {
	if [ -n "$AGENT" ]; then kill -KILL "$AGENT" 2>/dev/null; wait "$AGENT" 2>/dev/null; fi
	rm -rf "$T"
}
trap cleanup EXIT
export VSM_LEASE_TIMEOUT_MS=400 VSM_LEASE_RENEW_MS=50 VSM_LEASE_PROTOCOL=caw
fail() { echo "FAIL: $*" >&2; exit 1; }
v1() { "$VSMCTL" --state "$T/s1" "$@"; }
v2() { "$VSMCTL" --state "$T/s2" "$@"; }

mkdir "$T/ds"
v1 datastore add ds "file://$T/ds" >/dev/null || fail "datastore add"
v1 host add h1 >/dev/null && v1 host link h1 ds >/dev/null || fail "host h1"
v1 container create web --datastore ds --disk d0:1M >/dev/null || fail "create"
v1 attach web h1 >/dev/null || fail "attach h1"
"$VSMCTL" --state "$T/s1" agent >"$T/agent.out" 2>"$T/agent.err" &
AGENT=$!
v2 datastore add ds "file://$T/ds" >/dev/null || fail "datastore add (2)"
v2 host add h2 >/dev/null && v2 host link h2 ds >/dev/null || fail "host h2"
sleep 0.3
out=$(v2 attach web h2 2>&1) && fail "attach h2 succeeded while h1 is live"
case $out in
*"lease is held by host 'h1' since "*"(heartbeat moving)"*) ;;
*) fail "unexpected refusal: $out" ;;
esac
json=$(v2 lease status ds --json) || fail "lease status"
echo "$json" | grep -q '"host":"h1"' || fail "status: $json"
echo "$json" | grep -q '"state":"live"' || fail "status: $json"
v2 container create db --datastore ds --disk d0:1M >/dev/null || fail "create db"
for _ in $(seq 100); do
	grep -q '"event":"datastore-changed"' "$T/agent.out" && break
	sleep 0.05
done
grep -q '"event":"datastore-changed"' "$T/agent.out" || fail "agent printed no change event"
kill -TERM "$AGENT"
wait "$AGENT" || fail "agent exit status $?"
AGENT=
v2 attach web h2 --takeover >/dev/null || fail "takeover"
v2 lease status ds | grep -q "^web  *h2 " || fail "status after takeover"
out=$(v1 deploy web d0 2>&1) && fail "late deploy from h1 succeeded"
echo "$out" | grep -q "h2" || fail "late deploy message: $out"
echo "ok"
