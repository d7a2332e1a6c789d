#!/bin/bash
# A remote host for the libvirt backend: two unprivileged session
# libvirtds, each on its own XDG_RUNTIME_DIR and socket. The datastore's
# pool is defined only on the first; the second plays a remote host,
# registered with `host add h2 --hypervisor qemu+unix:///session?socket=...`
# and running a TCG domain. Checked:
#   - attach to h2 creates the pool on daemon 2, transient; a second
#     container's attach reuses it;
#   - deploy --domain hot-plugs into daemon 2's domain, undeploy removes it;
#   - the detach of the last container attached to h2 destroys that pool,
#     not before, and leaves no attachment record in the datastore;
#   - a failed creation on daemon 2 names the host and the pool;
#   - a pool defined by hand on daemon 2 (stopped) is started by attach and
#     left defined by detach.
# Both daemons, their qemus and virtlogds are stopped by pid and the temp
# dir removed in a trap, on success and failure alike.
#
# usage: remote-host.sh VSMCTL
set -euo pipefail

VSMCTL_BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
DOM=vsm-rh-dom
URI1=qemu:///session

fail() { echo "FAIL: $*" >&2; exit 1; }

for p in libvirtd virsh qemu-system-x86_64 setpriv; do
	command -v "$p" >/dev/null ||
		fail "'$p' is not installed (apt-get install libvirt-daemon libvirt-clients qemu-system-x86)"
done

# Under /tmp: the unprivileged user must reach it, and socket paths stay short.
T=$(mktemp -d /tmp/vsm-rh.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/bin" "$T/pool" "$T/state"
for d in 1 2; do
	mkdir -p "$T/home$d" "$T/run$d" "$T/config$d" "$T/cache$d"
	chmod 700 "$T/run$d"
done
SOCK2=$T/run2/libvirt/libvirt-sock
URI2="qemu+unix:///session?socket=$SOCK2"
PID1= PID2=

cp "$VSMCTL_BUILD" "$T/bin/"
LIBVSM=$(ldd "$VSMCTL_BUILD" | awk '/libvsm\.so/ {print $3}')
[ -n "$LIBVSM" ] || fail "cannot find the libvsm that $VSMCTL_BUILD uses"
cp -L "$LIBVSM" "$T/bin/$(basename "$LIBVSM")"
cp "$HERE/lsan.supp" "$T/lsan.supp"
VSMCTL=$T/bin/$(basename "$VSMCTL_BUILD")

if [ "$(id -u)" = 0 ]; then
	chown -R nobody:nogroup "$T"
	AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
	AS=()
fi
# env_for N: daemon N's session environment.
env_for() {
	echo "PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=$T/home$1 XDG_RUNTIME_DIR=$T/run$1"
	echo "XDG_CONFIG_HOME=$T/config$1 XDG_CACHE_HOME=$T/cache$1 TMPDIR=$T"
	echo "LD_LIBRARY_PATH=$T/bin LSAN_OPTIONS=suppressions=$T/lsan.supp"
	echo "ASAN_OPTIONS=${ASAN_OPTIONS:-} UBSAN_OPTIONS=${UBSAN_OPTIONS:-}"
}
as_user() { local n=$1; shift; "${AS[@]}" env -i $(env_for "$n") "$@"; }
virsh1() { as_user 1 virsh -q -c "$URI1" "$@"; }
virsh2() { as_user 1 virsh -q -c "$URI2" "$@"; }
vsm() { as_user 1 "$VSMCTL" --state "$T/state" "$@"; }

stop_daemon() { # N PID
	local n=$1 pid=$2 qpid lpid
	[ -n "$pid" ] || return 0
	as_user "$n" virsh -q -c "$URI1" destroy "$DOM" >/dev/null 2>&1
	qpid=$(cat "$T/run$n/libvirt/qemu/run/$DOM.pid" 2>/dev/null)
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
	kill "$pid" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	lpid=$(cat "$T/run$n/libvirt/virtlogd.pid" 2>/dev/null)
	[ -n "$lpid" ] && kill "$lpid" 2>/dev/null
	return 0
}
cleanup() {
	local rc=$? d
	set +e
	stop_daemon 2 "$PID2"
	stop_daemon 1 "$PID1"
	if [ $rc -ne 0 ]; then
		for d in 1 2; do
			[ -f "$T/daemon$d.log" ] || continue
			echo "--- libvirtd $d log (last 20 lines) ---" >&2
			tail -20 "$T/daemon$d.log" >&2
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

start_daemon() { # N -> pid in STARTED
	local n=$1
	"${AS[@]}" env -i $(env_for "$n") libvirtd --timeout 0 >"$T/daemon$n.log" 2>&1 &
	STARTED=$!
	for _ in $(seq 100); do
		[ -S "$T/run$n/libvirt/libvirt-sock" ] && return 0
		kill -0 "$STARTED" 2>/dev/null || fail "libvirtd $n exited: $(tail -5 "$T/daemon$n.log")"
		sleep 0.1
	done
	fail "libvirtd $n did not open its socket"
}

echo "== two session daemons as $(as_user 1 id -un) in $T"
start_daemon 1; PID1=$STARTED
start_daemon 2; PID2=$STARTED
virsh1 version >/dev/null || fail "virsh cannot reach daemon 1"
virsh2 version >/dev/null || fail "virsh cannot reach daemon 2 at $URI2"
virsh1 pool-define-as vsmpool dir --target "$T/pool" >/dev/null
virsh1 pool-start vsmpool >/dev/null
if virsh2 pool-info vsmpool >/dev/null 2>&1; then fail "daemon 2 already has vsmpool"; fi

cat >"$T/dom.xml" <<EOF
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
chmod 644 "$T/dom.xml"
virsh2 define "$T/dom.xml" >/dev/null
virsh2 start "$DOM" >/dev/null
[ "$(virsh2 domstate "$DOM")" = running ] || fail "domain $DOM is not running on daemon 2"

echo "== datastore on daemon 1, host h2 on daemon 2"
vsm datastore add ds1 "libvirt:///vsmpool?connect=$URI1"
vsm host add h2 --hypervisor "$URI2"
vsm host link h2 ds1
vsm container create web --datastore ds1 --thin --disk data:32M
vsm container create web2 --datastore ds1 --thin --disk d:16M

echo "== attach creates the pool on daemon 2, transient"
vsm attach web h2
grep -q "^ *vsmpool *$" <<<"$(virsh2 pool-list --name)" || fail "attach made no pool on daemon 2: $(virsh2 pool-list --all)"
grep -q '^Persistent: *no' <<<"$(virsh2 pool-info vsmpool)" || fail "the pool on daemon 2 is persistent: $(virsh2 pool-info vsmpool)"
vsm attach web2 h2

echo "== deploy --domain hot-plugs into daemon 2's domain, undeploy removes it"
vsm deploy web data --domain "$DOM" --bus scsi --target sda >/dev/null
DPATH=$(virsh1 vol-list vsmpool | awk '/-data\.raw/ {print $2}')
[ -n "$DPATH" ] || fail "no data volume in the pool"
grep -q "<source file='$DPATH'" <<<"$(virsh2 dumpxml "$DOM")" || fail "daemon 2's live XML lacks $DPATH"
vsm undeploy web data
if grep -q "$DPATH" <<<"$(virsh2 dumpxml "$DOM")"; then fail "disk still in daemon 2's live XML"; fi

echo "== detach of the last container destroys the pool it created"
vsm detach web
grep -q "^ *vsmpool *$" <<<"$(virsh2 pool-list --name)" || fail "detach of web removed the pool web2 still uses"
vsm detach web2
if virsh2 pool-info vsmpool >/dev/null 2>&1; then fail "the transient pool is still on daemon 2"; fi
if grep -q 'vsm-host@' <<<"$(virsh1 vol-list vsmpool)"; then
	fail "attachment records left: $(virsh1 vol-list vsmpool)"
fi
grep -q '^State: *running' <<<"$(virsh1 pool-info vsmpool)" || fail "daemon 1's pool was touched"

echo "== a failed creation names the host and the pool"
virsh2 pool-create-as clash dir --target "$T/pool" >/dev/null
if vsm attach web h2 2>"$T/err"; then fail "attach succeeded with a conflicting pool on daemon 2"; fi
grep -q "host 'h2'" "$T/err" && grep -q "vsmpool" "$T/err" || fail "error: $(cat "$T/err")"
echo "   $(cat "$T/err")"
virsh2 pool-destroy clash >/dev/null
if grep -qi 'h2' <<<"$(vsm container show web)"; then fail "the failed attach was recorded"; fi

echo "== a pool defined by hand on daemon 2 is started, and left alone by detach"
virsh2 pool-define-as vsmpool dir --target "$T/pool" >/dev/null
vsm attach web h2
grep -q '^State: *running' <<<"$(virsh2 pool-info vsmpool)" || fail "attach did not start the hand-made pool"
vsm deploy web data --domain "$DOM" --bus scsi --target sda >/dev/null
grep -q "<source file='$DPATH'" <<<"$(virsh2 dumpxml "$DOM")" || fail "hand-made pool: no hot-plug"
vsm undeploy web data
vsm detach web
grep -q '^Persistent: *yes' <<<"$(virsh2 pool-info vsmpool)" || fail "detach removed the hand-made pool"
if grep -q 'vsm-host@' <<<"$(virsh1 vol-list vsmpool)"; then fail "records for a hand-made pool"; fi

vsm container destroy web
vsm container destroy web2
echo "== done"
