#!/bin/bash
# vsmctl's host tags and limits (host tag/untag/limit, shown by host show
# and host list, also as JSON) and `attach CONTAINER auto` (placement
# phase 2): the host chosen is printed; a host that is not alive, or at
# its limit, is never chosen; nowhere to go fails with every reason.
set -u
VSMCTL=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-hosts-cli.XXXXXX")
AGENT=
cleanup() {
	if [ -n "$AGENT" ]; then kill -KILL "$AGENT" 2>/dev/null; wait "$AGENT" 2>/dev/null; fi
	rm -rf "$T"
}
trap cleanup EXIT
export VSM_LEASE_TIMEOUT_MS=600 VSM_LEASE_RENEW_MS=60
fail() { echo "FAIL: $*" >&2; exit 1; }
v() { "$VSMCTL" --state "$T/s" "$@"; }

mkdir "$T/ds"
v datastore add ds "file://$T/ds" --create >/dev/null || fail "datastore add"
for h in h1 h2 h3; do
	v host add $h >/dev/null && v host link $h ds >/dev/null || fail "host $h"
done

# Tags and limits.
v host tag h1 ssd >/dev/null || fail "tag ssd"
v host tag h1 rack=r1 >/dev/null || fail "tag rack"
v host tag h1 rack=r2 >/dev/null || fail "tag rack again"
out=$(v host tag h1 'bad key' 2>&1) && fail "bad tag accepted"
case $out in *"bad host tag 'bad key'"*) ;; *) fail "bad tag: $out" ;; esac
out=$(v host tag nosuch ssd 2>&1) && fail "tag of an unknown host accepted"
case $out in *"host 'nosuch' does not exist"*) ;; *) fail "unknown host: $out" ;; esac
out=$(v host untag h1 gpu 2>&1) && fail "untag of a missing tag succeeded"
case $out in *"no tag 'gpu'"*) ;; *) fail "untag gpu: $out" ;; esac
v host limit h1 --max-containers 2 >/dev/null || fail "limit"
v host limit h1 --max-containers x >/dev/null 2>&1 && fail "bad limit accepted"
out=$(v host show h1) || fail "show"
echo "$out" | grep -q '^tags: *rack=r2,ssd$' || fail "show tags: $out"
echo "$out" | grep -q '^max containers: 2$' || fail "show limit: $out"
out=$(v host list) || fail "list"
echo "$out" | grep -q '^h1 .*ds tags=rack=r2,ssd limit=2$' || fail "list: $out"
json=$(v --json host list) || fail "list --json"
echo "$json" | tr -d ' \n' | grep -q '"tags":\["rack=r2","ssd"\],"max_containers":2' ||
	fail "list --json: $json"
v host untag h1 ssd >/dev/null || fail "untag"
json=$(v --json host show h1) || fail "show --json"
echo "$json" | tr -d ' \n' | grep -q '"tags":\["rack=r2"\]' || fail "show --json: $json"

# attach auto: only h1 is alive (attached once by name, this state
# directory acts for it); h2 and h3 have no heartbeat.
for c in c1 c2 c3 c4; do
	v container create $c --datastore ds --disk d0:1M >/dev/null || fail "create $c"
done
v attach c1 h1 >/dev/null || fail "attach c1 h1"
out=$(v attach c2 auto) || fail "attach c2 auto"
[ "$out" = "container 'c2' attached to host 'h1'" ] || fail "attach c2 auto: $out"
# h1 is at its limit of 2 now: nowhere to go.
out=$(v attach c3 auto 2>&1) && fail "attach c3 auto succeeded: $out"
case $out in
*"no host qualifies"*"host 'h1': has 2 containers attached, limit 2"*"host 'h2': no heartbeat on datastore 'ds'"*) ;;
*) fail "attach c3 auto: $out" ;;
esac
# An agent of this state directory keeps h2 and h3 alive.
"$VSMCTL" --state "$T/s" agent --host h2 --host h3 >/dev/null 2>"$T/agent.err" &
AGENT=$!
ok=
for _ in $(seq 200); do
	if out=$(v attach c3 auto 2>&1); then ok=1; break; fi
	sleep 0.05
done
[ -n "$ok" ] || fail "attach c3 auto with h2, h3 alive: $out"
[ "$out" = "container 'c3' attached to host 'h2'" ] || fail "attach c3 auto: $out"
json=$(v --json attach c4 auto) || fail "attach c4 auto --json"
echo "$json" | tr -d ' \n' | grep -q '"attached_host":"h3"' || fail "attach c4: $json"
kill -TERM "$AGENT"
wait "$AGENT" || fail "agent exit status"
AGENT=
echo ok
