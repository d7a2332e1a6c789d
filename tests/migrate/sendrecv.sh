#!/bin/bash
# Cross-site transfer (doc/cross-site.md) between two sites that share
# nothing: two state directories (two catalogs), each with its own file
# datastore, `vsmctl send | vsmctl receive` between them. Checks: the
# round trip (qemu-img compare of every device and of every checkpoint
# after a revert, the checkpoint tree listed the same, no orphans);
# layers the receiver holds are not sent (two-way --to, and one-way
# --have from --list-have): fewer bytes, layers_skipped counted; a
# broken pipe mid-transfer, one-way and two-way, then a resume that
# sends less and compares equal; a damaged stream refused with a clear
# message and nothing visible; receive --abort.
# usage: sendrecv.sh VSMCTL
set -euo pipefail
V=$1
CUT=$(dirname "$0")/cut.py
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
A=$T/site-a B=$T/site-b
mkdir -p "$A/state" "$A/ds" "$B/state" "$B/ds" "$B/ds3" "$T/ref"
fail() { echo "FAIL: $*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); }
a() { VSM_STATE_DIR=$A/state "$V" "$@"; }
b() { VSM_STATE_DIR=$B/state "$V" "$@"; }
jget() { # field $1 of the JSON on stdin (a document, or the last of JSON lines)
	python3 -c '
import json, sys
t = sys.stdin.read().strip()
try:
    j = json.loads(t)
except ValueError:
    j = json.loads(t.splitlines()[-1])
print(eval("j" + sys.argv[1]))' "$1"
}
# What device $3 of container $2 reads on site $1 (a or b), as a raw file $4.
dump() {
	local ds
	ds=$($1 --json container show "$2" | jget '["datastore"]')
	$1 image read "$ds/$2:$3" 0 8388608 >"$4"
}
same() { # site container device reference
	dump "$1" "$2" "$3" "$T/now"
	qemu-img compare -q -f raw -F raw "$T/now" "$4" || fail "site $1: $2/$3 differs from $4"
	ok
}
tree() { # the checkpoint tree without backend keys
	$1 --json checkpoint list "$2" | python3 -c '
import json, sys
for k in json.load(sys.stdin):
    print(k["name"], k["parent"], k["ctime"], k["state_size"], k["current"],
          [(l["device"], l["cid"], l["size"]) for l in k["layers"]])'
}
no_orphans() { # site datastore
	[ "$($1 --json datastore check "$2" | python3 -c '
import json, sys; print(len(json.load(sys.stdin)["orphans"]))')" = 0 ] ||
		fail "site $1: orphans on $2"
	ok
}

a datastore add ds1 "file://$A/ds" >/dev/null
b datastore add ds2 "file://$B/ds" >/dev/null
b datastore add ds3 "file://$B/ds3" >/dev/null

# --- Round trip: a container with two checkpoints, one-way pipe. ---
a container create vm --datastore ds1 --disk d0:8M --disk d1:8M:qcow2 --thin >/dev/null
head -c 300000 /dev/urandom | a image write ds1/vm:d0 65536 >/dev/null
head -c 200000 /dev/urandom | a image write ds1/vm:d1 1048576 >/dev/null
a checkpoint create vm c1 >/dev/null
dump a vm d0 "$T/ref/vm.c1.d0"; dump a vm d1 "$T/ref/vm.c1.d1"
head -c 100000 /dev/urandom | a image write ds1/vm:d1 3000000 >/dev/null
a checkpoint create vm c2 >/dev/null
head -c 100000 /dev/urandom | a image write ds1/vm:d0 5000000 >/dev/null
dump a vm d0 "$T/ref/vm.top.d0"; dump a vm d1 "$T/ref/vm.top.d1"
uuid=$(a --json container show vm | jget '["uuid"]')

a --json send vm 2>"$T/send.json" | b --json receive --datastore ds2 >"$T/recv.json" ||
	fail "send | receive: $(cat "$T/send.json")"
[ "$(jget '["uuid"]' <"$T/recv.json")" = "$uuid" ] || fail "uuid not kept"; ok
[ "$(jget '["bytes"]' <"$T/recv.json")" = "$(jget '["bytes"]' <"$T/send.json")" ] ||
	fail "bytes sent and received differ"; ok
[ "$(jget '["layers_skipped"]' <"$T/recv.json")" = 0 ] || fail "skipped on an empty site"; ok
same b vm d0 "$T/ref/vm.top.d0"; same b vm d1 "$T/ref/vm.top.d1"
[ "$(tree a vm)" = "$(tree b vm)" ] || fail "checkpoint trees differ: $(tree a vm) / $(tree b vm)"
ok
a container show vm >/dev/null || fail "the source went away (default: keep)"; ok
ls "$A/state" | grep -q '^send-' && fail "the sender kept its snapshot after a success"; ok
ls "$B/state" | grep -q '^receive-' && fail "the receiver kept its partial after a success"; ok
no_orphans b ds2
b checkpoint revert vm c1 >/dev/null
same b vm d0 "$T/ref/vm.c1.d0"; same b vm d1 "$T/ref/vm.c1.d1"
b container show vm | grep -q ds2 || fail "not on ds2"; ok

# A second receive of the same container is refused before any data.
a send vm 2>/dev/null | b receive --datastore ds2 2>"$T/err" && fail "duplicate accepted"
grep -q "already" "$T/err" || fail "duplicate message: $(cat "$T/err")"; ok

# --- Parents already on the receiving side are not sent. ---
a container clone vm web --checkpoint c1 >/dev/null
head -c 50000 /dev/urandom | a image write ds1/web:d0 0 >/dev/null
dump a web d0 "$T/ref/web.d0"; dump a web d1 "$T/ref/web.d1"
# Baseline: to ds3, which holds nothing (two-way, so the receiver answers).
a --json send web --to "VSM_STATE_DIR=$B/state $V receive --datastore ds3 --name web-full" \
	2>"$T/full.json" || fail "send to ds3: $(cat "$T/full.json")"
full=$(jget '["bytes"]' <"$T/full.json")
[ "$(jget '["layers_skipped"]' <"$T/full.json")" = 0 ] || fail "skipped on ds3"; ok
b container destroy web-full >/dev/null
# ds2 holds vm, whose c1 layers web stands on.
a --json send web --to "VSM_STATE_DIR=$B/state $V receive --datastore ds2" 2>"$T/inc.json" ||
	fail "send to ds2: $(cat "$T/inc.json")"
inc=$(jget '["bytes"]' <"$T/inc.json")
[ "$(jget '["layers_skipped"]' <"$T/inc.json")" -ge 1 ] ||
	fail "no layer skipped: $(cat "$T/inc.json")"; ok
[ "$inc" -lt "$full" ] || fail "not fewer bytes: $inc vs $full"; ok
same b web d0 "$T/ref/web.d0"; same b web d1 "$T/ref/web.d1"
no_orphans b ds2
# One-way: the sender is told by the receiver's have list.
a container clone vm web2 --checkpoint c1 >/dev/null
head -c 50000 /dev/urandom | a image write ds1/web2:d1 65536 >/dev/null
dump a web2 d0 "$T/ref/web2.d0"; dump a web2 d1 "$T/ref/web2.d1"
b receive --datastore ds2 --list-have >"$T/have"
grep -q "$(a --json checkpoint list vm | python3 -c '
import json, sys; print(json.load(sys.stdin)[0]["layers"][0]["cid"])')" "$T/have" ||
	fail "have list lacks vm's c1 layer: $(cat "$T/have")"; ok
a --json send web2 --have "$T/have" 2>"$T/one.json" |
	b --json receive --datastore ds2 >"$T/one-r.json" || fail "one-way with --have"
[ "$(jget '["layers_skipped"]' <"$T/one.json")" -ge 1 ] || fail "one-way: nothing left out"; ok
[ "$(jget '["layers_skipped"]' <"$T/one-r.json")" -ge 1 ] || fail "one-way: receiver count"; ok
[ "$(jget '["bytes"]' <"$T/one.json")" -lt "$full" ] || fail "one-way: not fewer bytes"; ok
same b web2 d0 "$T/ref/web2.d0"; same b web2 d1 "$T/ref/web2.d1"
# A have list from another datastore, naming a layer the receiver does
# not hold: refused clearly, nothing visible.
a container create lone --datastore ds1 --disk d0:4M:qcow2 --thin >/dev/null
head -c 100000 /dev/urandom | a image write ds1/lone:d0 0 >/dev/null
a checkpoint create lone l1 >/dev/null
a send lone 2>/dev/null | b receive --datastore ds3 2>/dev/null || fail "lone to ds3"
b receive --datastore ds3 --list-have >"$T/stale"
a container clone lone lone2 --checkpoint l1 >/dev/null
a send lone2 --have "$T/stale" 2>/dev/null | b receive --datastore ds2 2>"$T/err" &&
	fail "a have list of another datastore was accepted"
grep -q "holds no copy" "$T/err" || fail "stale have message: $(cat "$T/err")"; ok
b container list | grep -q '^lone2 ' && fail "lone2 visible after the refusal"; ok
b receive --abort >/dev/null
no_orphans b ds2

# --- A broken pipe mid-transfer, one-way, then resume. ---
a container create big --datastore ds1 --disk d0:8M:qcow2 --disk d1:8M:qcow2 --thin >/dev/null
head -c 3000000 /dev/urandom | a image write ds1/big:d0 0 >/dev/null
a checkpoint create big b1 >/dev/null
head -c 3000000 /dev/urandom | a image write ds1/big:d1 0 >/dev/null
dump a big d0 "$T/ref/big.d0"; dump a big d1 "$T/ref/big.d1"
buuid=$(a --json container show big | jget '["uuid"]')
set +o pipefail
a send big 2>"$T/err-s" | head -c 4000000 | b receive --datastore ds2 2>"$T/err" &&
	fail "a truncated stream was accepted"
set -o pipefail
ok
grep -q "ended\|broken" "$T/err" || fail "broken pipe message: $(cat "$T/err")"; ok
b container list | grep -q '^big ' && fail "a half-received container is visible"; ok
[ -d "$B/state/receive-$buuid" ] || fail "no partial transfer kept"; ok
no_orphans b ds2
a --json send big 2>"$T/res.json" | b --json receive --datastore ds2 >"$T/res-r.json" ||
	fail "resume: $(cat "$T/res.json")"
[ "$(jget '["sections_resumed"]' <"$T/res-r.json")" -ge 1 ] ||
	fail "nothing resumed: $(cat "$T/res-r.json")"; ok
same b big d0 "$T/ref/big.d0"; same b big d1 "$T/ref/big.d1"
[ "$(tree a big)" = "$(tree b big)" ] || fail "big: checkpoint trees differ"; ok
[ -d "$B/state/receive-$buuid" ] && fail "partial kept after the resume"; ok

# --- The same, two-way: the resume sends fewer bytes. ---
a container create big2 --datastore ds1 --disk d0:8M:qcow2 --disk d1:8M:qcow2 --thin >/dev/null
head -c 3000000 /dev/urandom | a image write ds1/big2:d0 0 >/dev/null
a checkpoint create big2 k1 >/dev/null
head -c 3000000 /dev/urandom | a image write ds1/big2:d1 0 >/dev/null
dump a big2 d0 "$T/ref/big2.d0"; dump a big2 d1 "$T/ref/big2.d1"
stream2=$(a send big2 2>/dev/null | wc -c)
a send big2 --to "VSM_STATE_DIR=$B/state exec python3 $CUT 4000000 $V receive --datastore ds2" \
	2>"$T/err" && fail "two-way: a broken transfer succeeded"
grep -q "ended\|broken\|failed\|write" "$T/err" || fail "two-way broken message: $(cat "$T/err")"
ok
b container list | grep -q '^big2 ' && fail "two-way: half-received container visible"; ok
a --json send big2 --to "VSM_STATE_DIR=$B/state $V receive --datastore ds2" 2>"$T/res2.json" ||
	fail "two-way resume: $(cat "$T/res2.json")"
[ "$(jget '["sections_resumed"]' <"$T/res2.json")" -ge 1 ] ||
	fail "two-way: nothing resumed: $(cat "$T/res2.json")"; ok
[ "$(jget '["bytes"]' <"$T/res2.json")" -lt "$stream2" ] ||
	fail "two-way resume sent it all again: $(cat "$T/res2.json")"; ok
same b big2 d0 "$T/ref/big2.d0"; same b big2 d1 "$T/ref/big2.d1"

# --- --remove-source after the receiver's acknowledgement. ---
a container create gone --datastore ds1 --disk d0:8M:qcow2 --thin >/dev/null
head -c 100000 /dev/urandom | a image write ds1/gone:d0 4096 >/dev/null
dump a gone d0 "$T/ref/gone.d0"
a send gone --remove-source >/dev/null 2>"$T/err" && fail "--remove-source one-way accepted"
grep -q "needs --to" "$T/err" || fail "--remove-source message: $(cat "$T/err")"; ok
a send gone --remove-source --to "VSM_STATE_DIR=$B/state $V receive --datastore ds2" 2>/dev/null ||
	fail "send --remove-source"
a container show gone >/dev/null 2>&1 && fail "source kept with --remove-source"; ok
same b gone d0 "$T/ref/gone.d0"
no_orphans a ds1

# --- A damaged stream: refused, nothing visible, --abort clears. ---
a container create dmg --datastore ds1 --disk d0:8M:qcow2 --thin >/dev/null
head -c 2000000 /dev/urandom | a image write ds1/dmg:d0 0 >/dev/null
duuid=$(a --json container show dmg | jget '["uuid"]')
a send dmg >"$T/dmg.stream" 2>/dev/null
python3 - "$T/dmg.stream" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x40
open(p, 'wb').write(b)
EOF
b receive --datastore ds2 <"$T/dmg.stream" 2>"$T/err" && fail "a damaged stream was accepted"
grep -q "damaged\|digest\|checksum" "$T/err" || fail "damage message: $(cat "$T/err")"; ok
b container list | grep -q '^dmg ' && fail "a damaged container is visible"; ok
no_orphans b ds2
b receive --abort "$duuid" >/dev/null || fail "abort of the partial transfer"
[ -d "$B/state/receive-$duuid" ] && fail "--abort left the partial"; ok
b receive --abort "$duuid" 2>"$T/err" && fail "abort of nothing succeeded"
grep -q "no partial" "$T/err" || fail "abort message: $(cat "$T/err")"; ok
# Not a stream at all.
head -c 1000 /dev/urandom | b receive --datastore ds2 2>"$T/err" && fail "garbage accepted"
grep -q "not a libvsm transfer stream" "$T/err" || fail "garbage message: $(cat "$T/err")"; ok
# A clean stream afterwards still goes through.
a send dmg 2>/dev/null | b receive --datastore ds2 2>/dev/null || fail "dmg after the damage"
b container list | grep -q '^dmg ' || fail "dmg not received"; ok

# --- Three passes one-way: the cuts are temporary checkpoints, gone on
# both sides afterwards; the container arrives whole. (test_transfer.c
# writes between the passes.) ---
a container create its --datastore ds1 --disk d0:8M:qcow2 --thin >/dev/null
head -c 3000000 /dev/urandom | a image write ds1/its:d0 0 >/dev/null
a checkpoint create its k1 >/dev/null
head -c 100000 /dev/urandom | a image write ds1/its:d0 4000000 >/dev/null
dump a its d0 "$T/ref/its.d0"
a send its --passes 3 --json 2>"$T/its.json" | b receive --datastore ds2 >/dev/null 2>&1 ||
	fail "send --passes 3: $(cat "$T/its.json")"
[ "$(jget '["passes"]' <"$T/its.json")" = 3 ] || fail "passes: $(cat "$T/its.json")"; ok
same b its d0 "$T/ref/its.d0"
same a its d0 "$T/ref/its.d0"
for s in a b; do
	$s checkpoint list its | grep -q '\.xfer-' && fail "site $s: a temporary checkpoint stays"
	$s checkpoint list its | grep -q 'k1' || fail "site $s: k1 is missing"
	ok
done

# --- Refusals on the sending side. ---
a send vm --passes 3 --checkpoint c1 2>"$T/err" | cat >/dev/null &&
	fail "--passes 3 of a checkpoint accepted"
grep -q "one pass" "$T/err" || fail "passes message: $(cat "$T/err")"; ok
a send nope 2>"$T/err" | cat >/dev/null && fail "unknown container accepted"; ok
# A completed send drops its snapshot (a failed one keeps it for a resume).
for u in "$buuid" "$duuid"; do
	[ -e "$A/state/send-$u.vsmb" ] && fail "sender snapshot of $u left after success"
	ok
done
echo "sendrecv: $checks checks passed"
