#!/bin/bash
# The round trip of issue 15: a container with two checkpoints goes
# file -> iSCSI (the pool target of the tgtd that tests/iscsi/tgt-run.sh
# started) -> libvirt dir pool (a real unprivileged libvirtd on
# qemu:///session that this script starts) -> file. At every hop each
# device reads what it read before the first one (qemu-img compare of raw
# dumps read through libvsm), both checkpoints are listed, the datastore
# it left holds none of its devices (datastore check), and at the end a
# revert to the first checkpoint reads its data.
# libvirtd is stopped by its pid and the temp dir removed, in a trap.
#
# usage: tgt-run.sh roundtrip.sh VSMCTL
set -euo pipefail
VSMCTL_BUILD=$1
URI=qemu:///session
fail() { echo "FAIL: $*" >&2; exit 1; }
for p in libvirtd virsh qemu-img setpriv; do
	command -v "$p" >/dev/null || fail "'$p' is not installed"
done

# Under /tmp: the unprivileged user must reach it, the socket path stay short.
T=$(mktemp -d /tmp/vsm-mig.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/home" "$T/run" "$T/config" "$T/cache" "$T/pool" "$T/f1" "$T/f2" "$T/ref" "$T/bin"
chmod 700 "$T/run"
DAEMON_PID=
cp "$VSMCTL_BUILD" "$T/bin/"
LIBVSM=$(ldd "$VSMCTL_BUILD" | awk '/libvsm\.so/ {print $3}')
[ -n "$LIBVSM" ] || fail "cannot find the libvsm that $VSMCTL_BUILD uses"
cp -L "$LIBVSM" "$T/bin/$(basename "$LIBVSM")"
VSMCTL=$T/bin/$(basename "$VSMCTL_BUILD")
if [ "$(id -u)" = 0 ]; then
	chown -R nobody:nogroup "$T"
	AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
	AS=()
fi
ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T/home" XDG_RUNTIME_DIR="$T/run"
     XDG_CONFIG_HOME="$T/config" XDG_CACHE_HOME="$T/cache" TMPDIR="$T"
     LD_LIBRARY_PATH="$T/bin")
as_user() { "${AS[@]}" "${ENV[@]}" "$@"; }
virsh_u() { as_user virsh -q -c "$URI" "$@"; }
vsm() { as_user "$VSMCTL" --state "$T/state" "$@"; }

cleanup() {
	local rc=$?
	set +e
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		local lpid
		lpid=$(cat "$T/run/libvirt/virtlogd.pid" 2>/dev/null)
		[ -n "$lpid" ] && kill "$lpid" 2>/dev/null
	fi
	if [ $rc -ne 0 ] && [ -f "$T/daemon.log" ]; then
		echo "--- libvirtd log (last 20 lines) ---" >&2
		tail -20 "$T/daemon.log" >&2
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

"${AS[@]}" "${ENV[@]}" libvirtd --timeout 0 >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do
	[ -S "$T/run/libvirt/libvirt-sock" ] && break
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "libvirtd exited: $(tail -5 "$T/daemon.log")"
	sleep 0.1
done
[ -S "$T/run/libvirt/libvirt-sock" ] || fail "libvirtd did not open its socket"
virsh_u pool-create-as vsmpool dir --target "$T/pool" >/dev/null

dsof() { vsm --json container show vm | python3 -c 'import json,sys; print(json.load(sys.stdin)["datastore"])'; }
dump() { vsm image read "$(dsof)/vm:$1" 0 8388608 >"$2"; }
same() { # TAG: every device reads like the references TAG
	for d in $DEVS; do
		dump "$d" "$T/now"
		qemu-img compare -q -f raw -F raw "$T/now" "$T/ref/$1.$d" ||
			fail "vm/$d on $(dsof) differs from $1"
	done
}
hop() { # DATASTORE
	local from
	from=$(dsof)
	vsm --json migrate vm --datastore "$1" | tail -1 | grep -q "\"to\":\"$1\"" ||
		fail "$from -> $1"
	[ "$(dsof)" = "$1" ] || fail "not on $1 after the hop"
	same top
	[ "$(vsm --json checkpoint list vm | grep -c '"name"')" = 2 ] || fail "checkpoints on $1"
	vsm datastore check "$from" --grace 0 >/dev/null || fail "orphans on $from"
	vsm datastore check "$1" --grace 0 >/dev/null || fail "orphans on $1"
	echo "ok: $from -> $1"
}

vsm datastore add f1 "file://$T/f1" >/dev/null
vsm datastore add f2 "file://$T/f2" >/dev/null
vsm datastore add san "iscsi://127.0.0.1:$VSM_TEST_ISCSI_PORT/$VSM_TEST_IQN:pool" >/dev/null
vsm datastore add lv "libvirt:///vsmpool?connect=$URI" >/dev/null
# One device: the pool target has five free LUNs, and each layer, each
# top and the VM-state area take one (c1, c2, top, state: four).
DEVS=d0
vsm container create vm --datastore f1 --disk d0:8M --thin >/dev/null
head -c 300000 /dev/urandom | vsm image write f1/vm:d0 65536 >/dev/null
head -c 200000 /dev/urandom | vsm image write f1/vm:d0 1048576 >/dev/null
vsm checkpoint create vm c1 >/dev/null
for d in $DEVS; do dump $d "$T/ref/c1.$d"; done
head -c 100000 /dev/urandom | vsm image write f1/vm:d0 3000000 >/dev/null
vsm checkpoint create vm c2 >/dev/null
head -c 100000 /dev/urandom | vsm image write f1/vm:d0 5000000 >/dev/null
for d in $DEVS; do dump $d "$T/ref/top.$d"; done

hop san
hop lv
[ -z "$(ls "$T/f1")" ] || fail "f1 not emptied"
hop f2
[ "$(virsh_u vol-list vsmpool | grep -vc vsm-meta)" = 0 ] ||
	fail "volumes left in the pool: $(virsh_u vol-list vsmpool)"
vsm checkpoint revert vm c1 >/dev/null
same c1
for f in "$T"/f2/*.qcow2; do qemu-img check -q "$f" || fail "qemu-img check $f"; done
echo "ok: file -> iSCSI -> libvirt pool -> file"
