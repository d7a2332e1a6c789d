#!/bin/bash
# The fault switch from the command line (doc/faults.md): vsmctl of a test
# build with VSM_FAULT=OP:N[:transient|sticky][:eio|enospc] in its
# environment, limited by VSM_FAULT_MATCH to this test's directory. For
# N = 1, 2, ... until a run meets no fault, over `image write`, `image
# commit`, `image convert` and `checkpoint create`/`checkpoint delete`:
# each failure exits non-zero with a message naming the injected fault;
# afterwards (no fault) every qcow2 checks clean (qemu-img check rc 0 or
# 3) and reads back what was there before, or what the command wrote when
# it said it succeeded.
# usage: vsmctl-faults.sh VSMCTL
set -u
V=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export VSM_STATE_DIR=$T/state
failures=0
fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }
clean() { # every qcow2 given checks rc 0 or 3
	local f rc
	for f in "$@"; do
		qemu-img check -q "$f" >/dev/null 2>&1
		rc=$?
		[ $rc = 0 ] || [ $rc = 3 ] || fail "$run: qemu-img check $f says $rc"
	done
}
same() { # image $1 reads like raw file $2
	qemu-img compare -q -F raw "$1" "$2" || fail "$run: $1 does not read like $2"
}
# One command under the rule (limited to bdevs whose label holds $match);
# sets $rc; 0 when no fault was met.
faulted() {
	local n=$1 mode=$2; shift 2
	VSM_FAULT="any:$n:$mode" VSM_FAULT_MATCH="$match" "$V" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ $rc != 0 ]; then
		grep -q "injected" "$T/err" || fail "$run: exit $rc without naming the fault: $(cat "$T/err")"
		return 1
	fi
	! grep -q "injected" "$T/err"
}

cd "$T" || exit 1
# Pristine images: base (0x11 at 0, 64K) and top over it (0x22 at 192K).
"$V" image create base.qcow2 1M --cluster-size 4096 >/dev/null || exit 1
"$V" image create top.qcow2 1M --backing base.qcow2 --backing-format qcow2 >/dev/null || exit 1
head -c 65536 /dev/zero | tr '\0' '\021' | "$V" image write base.qcow2 0 || exit 1
head -c 8000 /dev/zero | tr '\0' '\042' | "$V" image write top.qcow2 196608 || exit 1
mkdir pristine && cp base.qcow2 top.qcow2 pristine/
qemu-img convert -O raw top.qcow2 want-top.raw
qemu-img convert -O raw base.qcow2 want-base.raw
cp want-top.raw want-written.raw
printf 'fault campaign' | dd of=want-written.raw bs=1 seek=300000 conv=notrunc status=none

for mode in transient:eio sticky:enospc; do
	match="$T/" # labels of path images: "image 'PATH'"
	# image write: the bytes are acknowledged only when it exits 0.
	for n in $(seq 1 200); do
		run="image write any:$n:$mode"
		cp pristine/*.qcow2 .
		printf 'fault campaign' >in
		faulted "$n" "$mode" image write top.qcow2 300000 <in && break
		clean base.qcow2 top.qcow2
		if [ $rc = 0 ]; then same top.qcow2 want-written.raw; fi
	done
	echo "vsmctl-faults: image write $mode: $((n - 1)) runs with a fault"
	# image commit: the overlay's view never changes; the base has it
	# once the commit succeeded; a second commit succeeds.
	for n in $(seq 1 400); do
		run="image commit any:$n:$mode"
		cp pristine/*.qcow2 .
		faulted "$n" "$mode" image commit top.qcow2 && break
		clean base.qcow2 top.qcow2
		same top.qcow2 want-top.raw
		if [ $rc = 0 ]; then same base.qcow2 want-top.raw; fi
		"$V" image commit top.qcow2 2>"$T/err" || fail "$run: commit again: $(cat "$T/err")"
		same base.qcow2 want-top.raw
	done
	echo "vsmctl-faults: image commit $mode: $((n - 1)) runs with a fault"
	# image convert: a failure leaves no target.
	for n in $(seq 1 400); do
		run="image convert any:$n:$mode"
		cp pristine/*.qcow2 .
		rm -f out.qcow2
		faulted "$n" "$mode" image convert top.qcow2 out.qcow2 --format qcow2 && break
		if [ $rc = 0 ]; then
			clean out.qcow2
			same out.qcow2 want-top.raw
		elif [ -e out.qcow2 ]; then
			fail "$run: a failed convert left out.qcow2"
		fi
	done
	echo "vsmctl-faults: image convert $mode: $((n - 1)) runs with a fault"
	# checkpoint create and delete on a file datastore (its labels:
	# "datastore 'ds1' ...", the metadata device included).
	match="datastore 'ds1'"
	# The container is named with its datastore: a lookup by bare name
	# skips a datastore it cannot read (a warning) and then reports
	# "does not exist" instead of the fault.
	for n in $(seq 1 400); do
		run="checkpoint create+delete any:$n:$mode"
		rm -rf "$T/state" "$T/ds" && mkdir "$T/ds"
		"$V" datastore add ds1 "file://$T/ds" >/dev/null || exit 1
		"$V" container create vm --datastore ds1 --disk d0:1M:qcow2 --thin >/dev/null || exit 1
		"$V" checkpoint create vm c1 >/dev/null || exit 1
		met=0
		faulted "$n" "$mode" checkpoint create ds1/vm c2 || met=1
		# A later delete works, whatever the faulted create left.
		if "$V" checkpoint list ds1/vm 2>/dev/null | grep -qE '(^|[- ])c2 '; then
			"$V" checkpoint delete ds1/vm c2 >/dev/null 2>"$T/err" ||
				fail "$run: delete c2 afterwards: $(cat "$T/err")"
		fi
		faulted "$n" "$mode" checkpoint delete ds1/vm c1 || met=1
		if "$V" checkpoint list ds1/vm 2>/dev/null | grep -qE '(^|[- ])c1 '; then
			"$V" checkpoint delete ds1/vm c1 >/dev/null 2>"$T/err" ||
				fail "$run: delete c1 afterwards: $(cat "$T/err")"
		fi
		clean "$T"/ds/*.qcow2
		[ "$(ls "$T"/ds | grep -c qcow2)" = 1 ] || fail "$run: layers left: $(ls "$T"/ds)"
		[ $met = 0 ] && break
	done
	echo "vsmctl-faults: checkpoint create+delete $mode: $((n - 1)) runs with a fault"
done
[ $failures = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "ok"
