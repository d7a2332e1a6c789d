#!/bin/bash
# vsmctl device add|remove|resize end to end: what a script sees (exit
# status, messages, --json) and what lands on the datastore (qemu-img).
# usage: vsmctl-device.sh PATH_TO_VSMCTL
set -u
vsmctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export VSM_STATE_DIR=$tmp/state
failures=0
checks=0

ok()   { checks=$((checks + 1)); echo "ok: $*"; }
bad()  { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }

run() {
	if out=$("$vsmctl" "$@" 2>"$tmp/err"); then ok "vsmctl $*"
	else bad "vsmctl $* exited $?: $(cat "$tmp/err")"; fi
}
# refuse STATUS SUBSTRING ARGS...: expect exit STATUS and SUBSTRING on stderr
refuse() {
	local status=$1 want=$2 rc; shift 2
	"$vsmctl" "$@" >/dev/null 2>"$tmp/err"; rc=$?
	if [ $rc -ne "$status" ]; then bad "vsmctl $* exited $rc, want $status: $(cat "$tmp/err")"
	elif grep -q -- "$want" "$tmp/err"; then ok "vsmctl $* refused: $(head -1 "$tmp/err")"
	else bad "vsmctl $* refused without '$want': $(cat "$tmp/err")"; fi
}
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }
expect() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', want '$2'"; fi; }
# The file of device $1 (its key is UUID-NAME-TAG.FORMAT on a file datastore).
key_of() { (cd "$tmp/ds1" && ls -- *-"$1"-*.*); }
files() { find "$tmp/ds1" -mindepth 1 -maxdepth 1 ! -name '.vsm*' | wc -l; }

mkdir -p "$tmp/ds1"
run datastore add ds1 "file://$tmp/ds1"
run host add h1
run host link h1 ds1
run container create web --datastore ds1 --disk root:1M

run device add web data:2M
expect "$out" "container 'web': device 'data' added (2.0 MiB, raw)" "device add prints the device"
run --json device add web q:4M:qcow2
expect "$(jget 'j["size"], j["format"], j["devices"]')" "4194304 qcow2 3" "device add --json"
qkey=$(key_of q)
if qemu-img check -q "$tmp/ds1/$qkey"; then ok "qemu-img check on the added qcow2"
else bad "qemu-img check on the added qcow2"; fi
run --json container show web
expect "$(jget '[d["name"] for d in j["devices"]]')" "['root', 'data', 'q']" "container show lists them"

n=$(files)
refuse 1 "already exists" device add web data:1M
refuse 1 "device" device add web 'bad/name:1M'
refuse 2 "NAME:SIZE" device add web nosize
refuse 2 "NAME:SIZE" device add web x:1M:vmdk
refuse 1 "thin" device add web huge:1P
refuse 2 "unknown option" device add web x:1M --thick
expect "$(files)" "$n" "refused adds leave no file"
run device add web big:1P:qcow2 --thin

run device resize web q 16M
expect "$out" "container 'web': device 'q' resized (16.0 MiB, qcow2)" "device resize prints the size"
expect "$(qemu-img info --output=json "$tmp/ds1/$qkey" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" \
	"16777216" "qemu-img info: virtual size after resize"
if qemu-img check -q "$tmp/ds1/$qkey"; then ok "qemu-img check after resize"
else bad "qemu-img check after resize"; fi
refuse 1 "can only grow" device resize web q 8M
refuse 2 "bad size" device resize web q lots
run attach web h1
run deploy web data
refuse 1 "deployed" device resize web data 4M
refuse 1 "deployed" device remove web data
run undeploy web data
run detach web

run device remove web big
expect "$out" "container 'web': device 'big' removed" "device remove prints"
run device remove web data
run device remove web q
expect "$(files)" "2" "removed devices leave no file"
refuse 1 "at least one device" device remove web root
refuse 1 "no device 'gone'" device remove web gone
refuse 2 "unknown device command" device frobnicate web

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
