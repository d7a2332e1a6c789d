#!/bin/bash
# vsmctl place and container create --datastore auto, end to end.
# usage: vsmctl-place.sh PATH_TO_VSMCTL
set -u
vsmctl=$1
tmp=$(mktemp -d)
agent=
cleanup() {
	if [ -n "$agent" ]; then kill -KILL "$agent" 2>/dev/null; wait "$agent" 2>/dev/null; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
export VSM_STATE_DIR=$tmp/state
failures=0
checks=0

ok()   { checks=$((checks + 1)); echo "ok: $*"; }
bad()  { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
run() {
	if out=$("$vsmctl" "$@" 2>"$tmp/err"); then ok "vsmctl $*"
	else bad "vsmctl $* exited $?: $(cat "$tmp/err")"; fi
}
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }
expect() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', want '$2'"; fi; }

run datastore add a "file://$tmp/a" --create
run datastore add b "file://$tmp/b" --create
run host add h1
run host link h1 a
run host link h1 b
# The golden image is on b only.
truncate -s 2M "$tmp/b/golden.img"

run place --disk root:8M
expect "$(head -1 <<<"$out" | cut -d' ' -f1)" "datastore:" "place prints the datastore first"
expect "$(sed -n 2p <<<"$out" | cut -d' ' -f1)" "host:" "then the host"

# No heartbeat for h1 yet: phase 1 answers, phase 2 says why no host.
run --json place --disk root:0 --base root=golden.img --thin
expect "$(jget 'j["host"]')" "None" "a host without a heartbeat is not chosen"
expect "$(jget '[x["reason"] for x in j["hosts"]["rejected"] if x["name"]=="h1"][0]')" \
	"no heartbeat on datastore 'b'" "and the reason says so"

# An agent keeps h1 alive on its datastores.
"$vsmctl" agent --host h1 >/dev/null 2>"$tmp/agent.err" &
agent=$!
for _ in $(seq 100); do [ -s "$VSM_STATE_DIR/lease-hosts" ] && break; sleep 0.1; done
run --json place --disk root:0 --base root=golden.img --thin
expect "$(jget 'j["datastore"]')" "b" "the datastore holding the base is chosen"
expect "$(jget '[x["name"] for x in j["datastores"]["ranked"]]')" "['b']" "only b ranked"
expect "$(jget '[x["reason"] for x in j["datastores"]["rejected"] if x["name"]=="a"][0]')" \
	"does not hold base image 'golden.img'" "a is rejected with why"
expect "$(jget '"available" in j["datastores"]["ranked"][0] and "score" in j["datastores"]["ranked"][0]')" \
	"True" "ranked entries carry score and available"
expect "$(jget 'j["host"]')" "h1" "the host linked to b is chosen (phase 2)"
expect "$(jget 'sorted(j["hosts"].keys()) if j["hosts"] else None')" "['ranked', 'rejected']" \
	"hosts have the same shape"

# Nothing qualifies: non-zero exit, every datastore named.
if out=$("$vsmctl" place --disk root:1P 2>"$tmp/err"); then
	bad "a 1 PiB request was placed: $out"
else
	if grep -q "a: needs" <<<"$out" && grep -q "b: needs" <<<"$out"; then
		ok "no datastore: every one named with why"
	else bad "no datastore: reasons missing: $out"; fi
fi

run container create web --datastore auto --disk root:8M --thin
if grep -q "created on datastore '[ab]'" <<<"$out"; then ok "create auto names the datastore"
else bad "create auto: $out"; fi
run --json container create db --datastore auto --disk root:0 --base root=golden.img --thin
expect "$(jget 'j["datastore"]')" "b" "create auto with a base lands where the base is"
run --json container list
expect "$(jget 'len(j)')" "2" "both listed, no reservation left"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
