#!/bin/bash
# The libvirt backend against a real libvirtd that this script starts as
# an unprivileged user on qemu:///session, with a dir pool under a temp
# directory and a tiny TCG domain:
#   - vsmctl drives a container from create to a device hot-attached in
#     the live domain and back, and a second state directory rescans it;
#   - vsmctl datastore check finds an orphan volume, keeps it while young
#     by the pool's timestamps and removes it once old;
#   - test-libvirt runs its real-daemon cases (qcow2 through libvirt
#     checked by qemu-img and virsh, block I/O, hot-attach of a qcow2
#     overlay, events over the remote driver, a consistency group with
#     one member on a pool of the daemon and one on a file datastore);
#   - test-hyper (when given) defines, starts, pauses, resumes and
#     removes a TCG domain through the built-in hypervisor driver.
#   - examples/provision (when EXAMPLE_PROVISION names it) clones a VM disk
#     from a golden image and plugs it into the domain.
# Everything it started is stopped by pid and the temp dir removed, in a
# trap, on success and failure alike. A step that cannot run fails.
#
# usage: real-daemon.sh VSMCTL TEST-LIBVIRT [TEST-HYPER]
set -euo pipefail

VSMCTL_BUILD=$1
TESTBIN_BUILD=$2
HYPERBIN_BUILD=${3:-}
HVDOM=vsm-hv-real
HERE=$(cd "$(dirname "$0")" && pwd)
DOM=vsm-lv-dom
URI=qemu:///session

fail() { echo "FAIL: $*" >&2; exit 1; }

for p in libvirtd virsh qemu-system-x86_64 qemu-img setpriv; do
	command -v "$p" >/dev/null ||
		fail "'$p' is not installed (apt-get install libvirt-daemon libvirt-clients qemu-system-x86 qemu-utils)"
done

# Under /tmp, not $TMPDIR: the unprivileged user must reach it, and the
# daemon's socket path must stay short.
T=$(mktemp -d /tmp/vsm-lvd.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/home" "$T/run" "$T/config" "$T/cache" "$T/pool" "$T/pool2" "$T/state" \
	"$T/state2" "$T/bin"
chmod 700 "$T/run"
DAEMON_PID=

# The unprivileged user may not reach the build tree (a clone under
# /root), so it runs copies: vsmctl with the libvsm it was linked with,
# and the statically linked test program.
cp "$VSMCTL_BUILD" "$TESTBIN_BUILD" ${HYPERBIN_BUILD:+"$HYPERBIN_BUILD"} \
	${EXAMPLE_PROVISION:+"$EXAMPLE_PROVISION"} "$T/bin/"
LIBVSM=$(ldd "$VSMCTL_BUILD" | awk '/libvsm\.so/ {print $3}')
[ -n "$LIBVSM" ] || fail "cannot find the libvsm that $VSMCTL_BUILD uses"
cp -L "$LIBVSM" "$T/bin/$(basename "$LIBVSM")"
cp "$HERE/lsan.supp" "$T/lsan.supp"
VSMCTL=$T/bin/$(basename "$VSMCTL_BUILD")
TESTBIN=$T/bin/$(basename "$TESTBIN_BUILD")

# Run as the unprivileged user with the session daemon's environment; the
# sanitizer settings meson gives the test pass through.
if [ "$(id -u)" = 0 ]; then
	chown -R nobody:nogroup "$T"
	AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
	AS=()
fi
ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T/home" XDG_RUNTIME_DIR="$T/run"
     XDG_CONFIG_HOME="$T/config" XDG_CACHE_HOME="$T/cache" TMPDIR="$T"
     LD_LIBRARY_PATH="$T/bin" LSAN_OPTIONS="suppressions=$T/lsan.supp"
     "ASAN_OPTIONS=${ASAN_OPTIONS:-}" "UBSAN_OPTIONS=${UBSAN_OPTIONS:-}"
     "MALLOC_PERTURB_=${MALLOC_PERTURB_:-0}")
as_user() { "${AS[@]}" "${ENV[@]}" "$@"; }
virsh_u() { as_user virsh -q -c "$URI" "$@"; }
vsm() { as_user "$VSMCTL" --state "$T/state" "$@"; }

cleanup() {
	local rc=$?
	set +e
	if [ -n "$DAEMON_PID" ]; then
		virsh_u destroy "$DOM" >/dev/null 2>&1
		# A qemu the daemon could not stop is ended by its own pid file.
		local qpid
		qpid=$(cat "$T/run/libvirt/qemu/run/$DOM.pid" 2>/dev/null)
		[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
		if [ -n "$HYPERBIN_BUILD" ]; then
			virsh_u destroy "$HVDOM" >/dev/null 2>&1
			qpid=$(cat "$T/run/libvirt/qemu/run/$HVDOM.pid" 2>/dev/null)
			[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
		fi
		kill "$DAEMON_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		# libvirtd spawned a virtlogd for the session; end it by its pid file.
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

as_user "$VSMCTL" --state "$T/state" datastore list >/dev/null || fail "the unprivileged user cannot run $VSMCTL"

echo "== starting libvirtd as $(as_user id -un) in $T"
"${AS[@]}" "${ENV[@]}" libvirtd --timeout 0 >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do
	[ -S "$T/run/libvirt/libvirt-sock" ] && break
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "libvirtd exited: $(tail -5 "$T/daemon.log")"
	sleep 0.1
done
[ -S "$T/run/libvirt/libvirt-sock" ] || fail "libvirtd did not open its socket"
virsh_u version >/dev/null || fail "virsh cannot reach the session daemon"

echo "== pools and a TCG domain"
virsh_u pool-create-as vsmpool dir --target "$T/pool" >/dev/null
virsh_u pool-create-as vsmpool2 dir --target "$T/pool2" >/dev/null
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
virsh_u define "$T/dom.xml" >/dev/null
virsh_u start "$DOM" >/dev/null
[ "$(virsh_u domstate "$DOM")" = running ] || fail "domain $DOM is not running"

DS="libvirt:///vsmpool?connect=$URI"
echo "== vsmctl: container create, attach, deploy --domain, undeploy"
vsm datastore add ds1 "$DS"
virsh_u vol-info --pool vsmpool vsm-meta >/dev/null || fail "no vsm-meta volume in the pool"
vsm host add h1 --hypervisor "$URI"
vsm host link h1 ds1
DISKS=(--disk root:64M --disk data:32M)
QCOW2=no
if vsm container create probe --datastore ds1 --thin --disk q:16M:qcow2 >/dev/null 2>"$T/probe.err"; then
	QCOW2=yes
	vsm container destroy probe >/dev/null
	DISKS+=(--disk scratch:16M:qcow2)
fi
echo "   qcow2 devices through the container API: $QCOW2 $(cat "$T/probe.err")"
vsm container create web --datastore ds1 --thin "${DISKS[@]}"
NVOL=$(virsh_u vol-list vsmpool | grep -c .)
[ "$NVOL" -eq $((2 + ${#DISKS[@]} / 2)) ] || fail "pool has $NVOL volumes: $(virsh_u vol-list vsmpool)"
if [ $QCOW2 = yes ]; then
	QPATH=$(virsh_u vol-list vsmpool | awk '/-scratch\.qcow2/ {print $2}')
	as_user qemu-img check -q "$QPATH" || fail "qemu-img check failed on $QPATH"
fi
vsm attach web h1
# libvirt's refusal reaches the caller in our words, and nothing is recorded.
if vsm deploy web data --domain no-such-dom --bus scsi --target sda 2>"$T/err"; then
	fail "deploy into a missing domain succeeded"
fi
if ! grep -q "domain 'no-such-dom'" "$T/err" || ! grep -qi "domain not found" "$T/err"; then
	fail "unexpected error for a missing domain: $(cat "$T/err")"
fi
vsm --json deploy web data --domain "$DOM" --bus scsi --target sda >"$T/deploy.json"
DPATH=$(virsh_u vol-list vsmpool | awk '/-data\.raw/ {print $2}')
[ -n "$DPATH" ] || fail "no data volume in the pool"
grep -q "file://$DPATH" "$T/deploy.json" || fail "deploy locator is not file://$DPATH: $(cat "$T/deploy.json")"
virsh_u dumpxml "$DOM" >"$T/live1.xml"
grep -q "<source file='$DPATH'" "$T/live1.xml" || fail "live XML lacks $DPATH"
grep -q "<target dev='sda' bus='scsi'/>" "$T/live1.xml" || fail "live XML lacks target sda"
if [ $QCOW2 = yes ]; then
	vsm deploy web scratch --domain "$DOM" --bus scsi --target sdc >/dev/null
	virsh_u dumpxml "$DOM" | grep -q "<source file='$QPATH'" || fail "qcow2 device not hot-attached"
	vsm undeploy web scratch
fi
# A deployed device keeps the container attached.
if vsm detach web 2>/dev/null; then fail "detach succeeded with a device deployed"; fi
vsm undeploy web data
virsh_u dumpxml "$DOM" >"$T/live2.xml"
if grep -q "$DPATH" "$T/live2.xml"; then fail "disk still in the live XML after undeploy"; fi
vsm detach web

echo "== a second state directory rescans the pool"
as_user "$VSMCTL" --state "$T/state2" datastore add ds1 "$DS" >/dev/null
as_user "$VSMCTL" --state "$T/state2" container list | grep -q web || fail "rescan did not find 'web'"
vsm container destroy web
NVOL=$(virsh_u vol-list vsmpool | grep -c .)
[ "$NVOL" -eq 1 ] || fail "destroy left volumes: $(virsh_u vol-list vsmpool)"

echo "== a linked clone of a golden image in the pool (qcow2 made by libvirt, read by the core)"
virsh_u vol-create-as vsmpool golden.raw 8M --format raw >/dev/null
GPATH=$(virsh_u vol-path --pool vsmpool golden.raw)
head -c 65536 /dev/urandom >"$T/pattern"
chmod 644 "$T/pattern"
as_user dd if="$T/pattern" of="$GPATH" bs=64k conv=notrunc status=none
vsm container create gold --datastore ds1 --thin --disk root:0:qcow2 --base root=golden.raw
OPATH=$(virsh_u vol-list vsmpool | awk '/-root\.qcow2/ {print $2}')
[ -n "$OPATH" ] || fail "no overlay volume for the clone"
as_user qemu-img check -q "$OPATH" || fail "qemu-img check failed on the clone $OPATH"
as_user qemu-img info "$OPATH" | grep -q "^backing file: golden.raw" ||
	fail "clone's backing file is not golden.raw: $(as_user qemu-img info "$OPATH")"
as_user qemu-img compare -q "$OPATH" "$GPATH" || fail "clone does not read as its golden image"
virsh_u vol-dumpxml --pool vsmpool "$(basename "$OPATH")" | grep -q "<path>golden.raw</path>" ||
	fail "vol-dumpxml of the clone shows no backing chain"
# A clone of the clone: the core opens libvirt's overlay through the
# backend and follows its backing reference (a volume name) as a key.
vsm container create gold2 --datastore ds1 --thin --disk root:0:qcow2 \
	--base "root=$(basename "$OPATH")"
O2PATH=$(virsh_u vol-list vsmpool | awk -v o="$OPATH" '/-root\.qcow2/ && $2 != o {print $2}')
[ -n "$O2PATH" ] || fail "no overlay volume for the second clone"
as_user qemu-img compare -q "$O2PATH" "$GPATH" || fail "second clone does not read as golden"
vsm attach gold2 h1
vsm deploy gold2 root --domain "$DOM" --bus scsi --target sdb >/dev/null
virsh_u dumpxml "$DOM" >"$T/live3.xml"
for p in "$O2PATH" "$OPATH" "$GPATH"; do
	grep -q "<source file='$p'" "$T/live3.xml" || fail "live XML lacks chain layer $p"
done
vsm undeploy gold2 root
if virsh_u dumpxml "$DOM" | grep -q "$O2PATH"; then fail "clone still attached after undeploy"; fi
vsm detach gold2
vsm container destroy gold2
vsm container destroy gold
virsh_u vol-info --pool vsmpool golden.raw >/dev/null || fail "destroying the clone removed the golden image"
[ ! -e "$OPATH" ] || fail "destroy left the clone's overlay"

echo "== datastore check: an orphan volume, aged by the pool's own timestamps"
ORPH=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9-d0.raw
virsh_u vol-create-as vsmpool "$ORPH" 4M --format raw >/dev/null
if vsm --json datastore check ds1 >"$T/check1.json"; then fail "check with an orphan exited 0"; fi
python3 - "$T/check1.json" <<'PY' || fail "check of a new orphan: $(cat "$T/check1.json")"
import json, sys
j = json.load(open(sys.argv[1]))
o = j["orphans"]
assert len(o) == 1 and o[0]["key"] == "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9-d0.raw", o
# a dir pool keeps times: the age is known, so the grace period applies
assert o[0]["state"] == "young" and o[0]["age"] is not None and 0 <= o[0]["age"] < 600, o
assert j["foreign"] == 1 and j["referenced"] == 0, j  # golden.raw; vsm-meta is not listed
PY
as_user touch -d '2 hours ago' "$(virsh_u vol-path --pool vsmpool "$ORPH")"
vsm datastore check ds1 --repair >"$T/check2.txt" || fail "repair left orphans: $(cat "$T/check2.txt")"
grep -q "^$ORPH .* removed " "$T/check2.txt" || fail "repair output: $(cat "$T/check2.txt")"
if virsh_u vol-info --pool vsmpool "$ORPH" >/dev/null 2>&1; then fail "orphan volume still in the pool"; fi
virsh_u vol-info --pool vsmpool golden.raw >/dev/null || fail "the repair removed the golden image"
virsh_u vol-info --pool vsmpool vsm-meta >/dev/null || fail "the repair removed the metadata volume"

if [ -n "${EXAMPLE_PROVISION:-}" ]; then
	echo "== examples/provision: a VM's disk cloned from a golden image, plugged into the domain"
	head -c 4M /dev/urandom >"$T/golden.img"
	chmod 644 "$T/golden.img"
	as_user "$T/bin/$(basename "$EXAMPLE_PROVISION")" "$T/state3" "$DS" "$URI" "$DOM" \
		"$T/golden.img" ex1 >"$T/provision.out" || fail "provision: $(cat "$T/provision.out")"
	EXPATH=$(virsh_u vol-list vsmpool | awk '/-root\.qcow2/ {print $2}')
	[ -n "$EXPATH" ] || fail "provision made no overlay volume: $(virsh_u vol-list vsmpool)"
	grep -q "file://$EXPATH" "$T/provision.out" || fail "provision output: $(cat "$T/provision.out")"
	virsh_u dumpxml "$DOM" | grep -q "<source file='$EXPATH'" || fail "the clone is not in the live XML"
	# -U: the running QEMU holds the image's write lock.
	as_user qemu-img compare -U "$EXPATH" "$T/golden.img" >"$T/cmp.out" 2>&1 ||
		fail "the clone does not read as the golden image: $(cat "$T/cmp.out"; as_user qemu-img info -U --backing-chain "$EXPATH")"
	# What the example left is ordinary state: vsmctl takes it down.
	ex() { as_user "$VSMCTL" --state "$T/state3" "$@"; }
	ex undeploy ex1 root
	ex detach ex1
	ex container destroy ex1
	if virsh_u dumpxml "$DOM" | grep -q "$EXPATH"; then fail "the clone is still plugged in"; fi
fi

echo "== backend cases against the daemon (qcow2, block I/O, hot-attach, events)"
as_user env LV_REAL=1 LV_CONNECT="$URI" LV_POOL=vsmpool2 LV_DOMAIN="$DOM" "$TESTBIN"

if [ -n "$HYPERBIN_BUILD" ]; then
	echo "== hypervisor driver: a TCG domain defined, started, paused, resumed, removed"
	as_user env HV_REAL_URI="$URI" "$T/bin/$(basename "$HYPERBIN_BUILD")"
	if virsh_u dominfo "$HVDOM" >/dev/null 2>&1; then fail "domain $HVDOM is still defined"; fi
fi

virsh_u destroy "$DOM" >/dev/null
echo "== done"
