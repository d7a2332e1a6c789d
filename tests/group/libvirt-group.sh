#!/bin/bash
# Group checkpoints of VMs running under a real unprivileged session
# libvirtd (doc/groups.md): two TCG domains, each with a member's device
# hot-plugged; `vsmctl group checkpoint` pauses both, checkpoints both
# members and resumes both. A blocked group checkpoint (the time bound
# exceeded; --freeze with no guest agent to answer; a member whose domain
# cannot be paused) leaves no checkpoint in any member and every domain
# that was running, running.
# The daemon is started as in tests/libvirt/real-daemon.sh and stopped by
# its pid in the trap.
# usage: libvirt-group.sh VSMCTL
set -euo pipefail

VSMCTL_BUILD=$1
URI=qemu:///session
DOMS=(vsm-grp-a vsm-grp-b)

fail() { echo "FAIL: $*" >&2; exit 1; }

for p in libvirtd virsh qemu-system-x86_64 setpriv; do
	command -v "$p" >/dev/null ||
		fail "'$p' is not installed (apt-get install libvirt-daemon libvirt-clients qemu-system-x86)"
done

T=$(mktemp -d /tmp/vsm-lvg.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/home" "$T/run" "$T/config" "$T/cache" "$T/pool" "$T/state" "$T/bin"
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
     LD_LIBRARY_PATH="$T/bin" "ASAN_OPTIONS=${ASAN_OPTIONS:-}" "LSAN_OPTIONS=${LSAN_OPTIONS:-}"
     "UBSAN_OPTIONS=${UBSAN_OPTIONS:-}")
as_user() { "${AS[@]}" "${ENV[@]}" "$@"; }
virsh_u() { as_user virsh -q -c "$URI" "$@"; }
vsm() { as_user "$VSMCTL" --state "$T/state" "$@"; }

cleanup() {
	local rc=$?
	set +e
	if [ -n "$DAEMON_PID" ]; then
		local d qpid
		for d in "${DOMS[@]}"; do
			virsh_u destroy "$d" >/dev/null 2>&1
			qpid=$(cat "$T/run/libvirt/qemu/run/$d.pid" 2>/dev/null)
			[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
		done
		kill "$DAEMON_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		local lpid
		lpid=$(cat "$T/run/libvirt/virtlogd.pid" 2>/dev/null)
		[ -n "$lpid" ] && kill "$lpid" 2>/dev/null
	fi
	if [ $rc -ne 0 ] && [ -f "$T/daemon.log" ]; then
		echo "--- libvirtd log (last 30 lines) ---" >&2
		tail -30 "$T/daemon.log" >&2
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

echo "== starting libvirtd as $(as_user id -un) in $T"
"${AS[@]}" "${ENV[@]}" libvirtd --timeout 0 >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do
	[ -S "$T/run/libvirt/libvirt-sock" ] && break
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "libvirtd exited: $(tail -5 "$T/daemon.log")"
	sleep 0.1
done
[ -S "$T/run/libvirt/libvirt-sock" ] || fail "libvirtd did not open its socket"

echo "== a pool and two TCG domains"
virsh_u pool-create-as vsmpool dir --target "$T/pool" >/dev/null
for d in "${DOMS[@]}"; do
	cat >"$T/$d.xml" <<XML
<domain type='qemu'>
  <name>$d</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <memballoon model='none'/>
  </devices>
</domain>
XML
	chmod 644 "$T/$d.xml"
	virsh_u define "$T/$d.xml" >/dev/null
	virsh_u start "$d" >/dev/null
	[ "$(virsh_u domstate "$d")" = running ] || fail "domain $d is not running"
done
running() { [ "$(virsh_u domstate "$1")" = running ] || fail "$2: domain $1 is $(virsh_u domstate "$1")"; }
has_ckpt() { vsm checkpoint list "$1" | grep -qE "(^|[ -])$2 "; }
top_of() { virsh_u domblklist "$1" --details | awk '$3 == "sda" {print $4}'; }

vsm datastore add ds1 "libvirt:///vsmpool?connect=$URI" >/dev/null
vsm host add h1 --hypervisor "$URI" >/dev/null
vsm host link h1 ds1 >/dev/null
M=(ma mb)
for i in 0 1; do
	vsm container create "${M[$i]}" --datastore ds1 --thin --disk root:16M:qcow2 >/dev/null
	vsm attach "${M[$i]}" h1 >/dev/null
	vsm deploy "${M[$i]}" root --domain "${DOMS[$i]}" --bus scsi --target sda >/dev/null
	[ -n "$(top_of "${DOMS[$i]}")" ] || fail "device of ${M[$i]} not in ${DOMS[$i]}"
done
vsm group create grp ma mb >/dev/null

echo "== group checkpoint of two running domains"
before=("$(top_of "${DOMS[0]}")" "$(top_of "${DOMS[1]}")")
vsm group checkpoint grp c1 >"$T/out" 2>&1 || fail "group checkpoint: $(cat "$T/out")"
grep -q "checkpoint 'c1' created in 2" "$T/out" || fail "group checkpoint: $(cat "$T/out")"
cat "$T/out"
for i in 0 1; do
	running "${DOMS[$i]}" "after the group checkpoint"
	# Paused and resumed by libvirt (not left alone): the reason says so.
	virsh_u domstate "${DOMS[$i]}" --reason | grep -q "unpaused" ||
		fail "${DOMS[$i]} was not paused and resumed: $(virsh_u domstate "${DOMS[$i]}" --reason)"
	has_ckpt "${M[$i]}" c1 || fail "member ${M[$i]} has no checkpoint c1"
	after=$(top_of "${DOMS[$i]}")
	[ -n "$after" ] && [ "$after" != "${before[$i]}" ] ||
		fail "${DOMS[$i]} does not use the member's new top ($after, was ${before[$i]}): $(virsh_u domblklist "${DOMS[$i]}" --details)"
	qemu-img info -U --backing-chain "$after" | grep -q "${before[$i]}" ||
		fail "the new top of ${M[$i]} does not stand on the frozen layer"
done

echo "== the time bound exceeded: everything undone, both domains running"
if vsm group checkpoint grp c2 --timeout 0.001 2>"$T/err"; then fail "checkpoint beyond its bound succeeded"; fi
grep -q "longer than 1 ms" "$T/err" || fail "timeout message: $(cat "$T/err")"
for i in 0 1; do
	running "${DOMS[$i]}" "after the aborted group checkpoint"
	has_ckpt "${M[$i]}" c2 && fail "member ${M[$i]} kept checkpoint c2"
done
vsm group show grp | grep -q "^  c2 " && fail "group lists c2"

echo "== --freeze without a guest agent in the domains: refused, nothing made"
# The domains have no agent channel, so libvirt refuses the freeze: the
# group checkpoint fails naming the domain, thaws what it froze, and no
# member keeps the checkpoint.
if vsm group checkpoint grp c5 --freeze 2>"$T/err"; then fail "freeze without an agent succeeded"; fi
grep -qE "${DOMS[0]}|${DOMS[1]}" "$T/err" || fail "freeze message: $(cat "$T/err")"
cat "$T/err"
for i in 0 1; do
	running "${DOMS[$i]}" "after the refused freeze"
	has_ckpt "${M[$i]}" c5 && fail "member ${M[$i]} kept checkpoint c5"
done
vsm group show grp | grep -q "^  c5 " && fail "group lists c5"

echo "== a member whose domain cannot be paused: refused, nothing made"
virsh_u destroy "${DOMS[1]}" >/dev/null
if vsm group checkpoint grp c3 2>"$T/err"; then fail "checkpoint with a stopped domain succeeded"; fi
grep -q "${DOMS[1]}" "$T/err" || fail "stopped domain message: $(cat "$T/err")"
running "${DOMS[0]}" "after the refused group checkpoint"
for i in 0 1; do
	has_ckpt "${M[$i]}" c3 && fail "member ${M[$i]} has checkpoint c3"
done
echo "== done"
