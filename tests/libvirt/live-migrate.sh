#!/bin/bash
# Live migration of a container whose devices a running domain uses
# (doc/migration.md, "Live migration of a deployed container"), against a
# real libvirtd this script starts as an unprivileged user on
# qemu:///session, with a tiny TCG domain (no guest OS: QEMU runs with
# the disks attached):
#   - a container on file datastore ds1 with a qcow2 device standing on a
#     checkpoint layer (two of them), and a container with one raw device
#     and no chain, written with known data, all
#     deployed into the domain (the file backend records the domain; the
#     script hot-plugs the locator's <disk>, as a management tool would);
#   - a migration with a 1 ms deadline and the ABORT rule fails with
#     -VSM_ETIMEDOUT, one cancelled by its progress callback fails with
#     -VSM_ECANCELED: each time the domain still reads ds1, the container
#     is listed on ds1 only and ds2 holds no device;
#   - the migrating process SIGKILLed during the block copy: a new
#     context's recovery aborts the copy job and removes the target copy;
#     refusals (a target not linked to the host, a deployment without a
#     domain) change nothing;
#   - a live migration to ds2 while QEMU writes the disk (qemu-io through
#     the monitor, before, during and after the copy; every write must
#     land on ds2): the live domain XML names the ds2 files,
#     they read as the source did (qemu-img compare), qemu-img check is
#     clean, the record is on ds2 and nothing of it is left on ds1;
#   - back to ds1 with a 1 ms deadline and the SYNC rule: the copy
#     restarts with synchronous writes and finishes, data equal again
#     (the raw container moves back through `vsmctl migrate --live`).
# Everything it started is stopped by pid and the temp dir removed, in a
# trap, on success and failure alike.
#
# usage: live-migrate.sh VSMCTL LIVE-MIGRATE-DRV
set -euo pipefail
[ -n "${VSM_TRACE:-}" ] && set -x

VSMCTL_BUILD=$1
DRV_BUILD=$2
DOM=vsm-live-dom
URI=qemu:///session

fail() { echo "FAIL: $*" >&2; exit 1; }

for p in libvirtd virsh qemu-system-x86_64 qemu-img qemu-io setpriv; do
	command -v "$p" >/dev/null ||
		fail "'$p' is not installed (apt-get install libvirt-daemon libvirt-clients qemu-system-x86 qemu-utils)"
done

# Under /tmp: the unprivileged user must reach it, the socket path stay short.
T=$(mktemp -d /tmp/vsm-lvm.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/home" "$T/run" "$T/config" "$T/cache" "$T/state" "$T/bin" "$T/ds1" "$T/ds2"
chmod 700 "$T/run"
DAEMON_PID=

cp "$VSMCTL_BUILD" "$DRV_BUILD" "$T/bin/"
LIBVSM=$(ldd "$VSMCTL_BUILD" | awk '/libvsm\.so/ {print $3}')
[ -n "$LIBVSM" ] || fail "cannot find the libvsm that $VSMCTL_BUILD uses"
cp -L "$LIBVSM" "$T/bin/$(basename "$LIBVSM")"
VSMCTL=$T/bin/$(basename "$VSMCTL_BUILD")
DRV=$T/bin/$(basename "$DRV_BUILD")

if [ "$(id -u)" = 0 ]; then
	chown -R nobody:nogroup "$T"
	AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
	AS=()
fi
ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T/home" XDG_RUNTIME_DIR="$T/run"
     XDG_CONFIG_HOME="$T/config" XDG_CACHE_HOME="$T/cache" TMPDIR="$T"
     LD_LIBRARY_PATH="$T/bin" "ASAN_OPTIONS=${ASAN_OPTIONS:-}" "LSAN_OPTIONS=${LSAN_OPTIONS:-}"
     "UBSAN_OPTIONS=${UBSAN_OPTIONS:-}" "MALLOC_PERTURB_=${MALLOC_PERTURB_:-0}")
as_user() { "${AS[@]}" "${ENV[@]}" "$@"; }
virsh_u() { as_user virsh -q -c "$URI" "$@"; }
vsm() { as_user "$VSMCTL" --state "$T/state" "$@"; }
drv() { as_user "$DRV" "$T/state" "$@"; }

cleanup() {
	local rc=$?
	set +e
	if [ -n "$DAEMON_PID" ]; then
		virsh_u destroy "$DOM" >/dev/null 2>&1
		local qpid lpid
		qpid=$(cat "$T/run/libvirt/qemu/run/$DOM.pid" 2>/dev/null)
		[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
		kill "$DAEMON_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		lpid=$(cat "$T/run/libvirt/virtlogd.pid" 2>/dev/null)
		[ -n "$lpid" ] && kill "$lpid" 2>/dev/null
	fi
	if [ $rc -ne 0 ] && [ -f "$T/daemon.log" ]; then
		echo "--- libvirtd log (last 30 lines) ---" >&2
		tail -30 "$T/daemon.log" >&2
		local qlog="$T/home/.cache/libvirt/qemu/log/$DOM.log"
		[ -f "$T/cache/libvirt/qemu/log/$DOM.log" ] && qlog="$T/cache/libvirt/qemu/log/$DOM.log"
		[ -f "$qlog" ] && { echo "--- qemu log ---" >&2; tail -20 "$qlog" >&2; }
	fi
	[ -n "${VSM_KEEP:-}" ] && echo "kept $T" >&2 || rm -rf "$T"
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
virsh_u version >/dev/null || fail "virsh cannot reach the session daemon"

echo "== a TCG domain"
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

echo "== a container on ds1 with known data, deployed into the domain"
vsm datastore add ds1 "file://$T/ds1" >/dev/null
vsm datastore add ds2 "file://$T/ds2" >/dev/null
vsm host add h1 --hypervisor "$URI" >/dev/null
vsm host link h1 ds1 >/dev/null
vsm host link h1 ds2 >/dev/null
vsm container create web --datastore ds1 --thin --disk root:160M:qcow2 --disk data:8M >/dev/null
# The file of a device's writable top, as container show names it (mtimes
# do not tell: a checkpoint writes its frozen layer's content ID last).
top_file() { # DATASTORE-DIR CONTAINER DEVICE
	local key
	key=$(vsm --json container show "$2" | python3 -c '
import json, sys
d = [d for d in json.load(sys.stdin)["devices"] if d["name"] == sys.argv[1]][0]
print(d["chain"][0]["key"])' "$3") || return 1
	echo "$T/$1/$key"
}
ROOT=$(top_file ds1 web root)
DATA=$(top_file ds1 web data)
[ -f "$ROOT" ] && [ -f "$DATA" ] || fail "device files not found in ds1: $(ls "$T/ds1")"
as_user qemu-io -f qcow2 -c "write -P 0x11 0 2M" -c "write -P 0x22 6M 1M" "$ROOT" >/dev/null
vsm checkpoint create web c1 >/dev/null
# The checkpoint froze the top; the new top is the newest root file.
ROOT=$(top_file ds1 web root)
as_user qemu-img info -U "$ROOT" | grep -q "^backing file:" || fail "$ROOT stands on no checkpoint layer"
# Enough data in the top that its copy cannot be ready within 1 ms
# (the ABORT and SYNC cases below rely on that).
as_user qemu-io -f qcow2 -c "write -P 0x33 1M 3M" -c "write -z 6M 64k" \
	-c "write -P 0x77 16M 128M" "$ROOT" >/dev/null
DATA=$(top_file ds1 web data)
as_user qemu-io -f qcow2 -c "write -P 0x44 0 1M" -c "write -P 0x55 7M 512k" "$DATA" >/dev/null
# A raw device with no chain, in a container of its own (its copy is a
# full one).
vsm container create flat --datastore ds1 --thin --disk scratch:4M >/dev/null
SCR=$(top_file ds1 flat scratch)
case "$SCR" in *.raw) ;; *) fail "scratch is not a raw file: $SCR";; esac
as_user qemu-io -f raw -c "write -P 0x66 512k 1M" "$SCR" >/dev/null
vsm attach web h1 >/dev/null
vsm attach flat h1 >/dev/null
plug() { # DEVICE TARGET [CONTAINER]
	vsm --json deploy "${3:-web}" "$1" --domain "$DOM" --bus scsi --target "$2" >"$T/dep-$1.json"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disk_xml"])' "$T/dep-$1.json" \
		>"$T/disk-$1.xml" 2>/dev/null ||
		fail "no <disk> in the deploy output: $(cat "$T/dep-$1.json")"
	chmod 644 "$T/disk-$1.xml"
	virsh_u attach-device "$DOM" "$T/disk-$1.xml" --live >/dev/null
}
plug root sda
plug data sdb
plug scratch sdc flat
src_of() { virsh_u domblklist "$DOM" --details | awk -v t="$1" '$3 == t {print $4}'; }
[ "$(src_of sda)" = "$ROOT" ] || fail "sda reads $(src_of sda), not $ROOT"
[ "$(src_of sdb)" = "$DATA" ] || fail "sdb reads $(src_of sdb), not $DATA"
as_user qemu-img convert -U -O raw "$ROOT" "$T/ref-root.raw"
as_user qemu-img convert -U -O raw "$DATA" "$T/ref-data.raw"
as_user qemu-img convert -U -f raw -O raw "$SCR" "$T/ref-scr.raw"

on_ds1() { # WHY: the domain, the record and the files all still on ds1
	[ "$(src_of sda)" = "$ROOT" ] || fail "$1: sda reads $(src_of sda), not $ROOT"
	[ "$(src_of sdb)" = "$DATA" ] || fail "$1: sdb reads $(src_of sdb), not $DATA"
	[ "$(src_of sdc)" = "$SCR" ] || fail "$1: sdc reads $(src_of sdc), not $SCR"
	[ "$(virsh_u domstate "$DOM")" = running ] || fail "$1: domain is $(virsh_u domstate "$DOM")"
	vsm container list >"$T/list"
	[ "$(grep -c '^web ' "$T/list" || true)" = 1 ] && grep -q "^web .*ds1" "$T/list" ||
		fail "$1: container list: $(cat "$T/list")"
	local left
	left=$(ls "$T/ds2" | grep -v '^vsm-meta' || true)
	[ -z "$left" ] || fail "$1: ds2 keeps $left"
	virsh_u domblkinfo "$DOM" sda >/dev/null || fail "$1: sda is gone"
	if virsh_u blockjob "$DOM" sda --info 2>/dev/null | grep -qi "copy"; then
		fail "$1: a copy job still runs on sda"
	fi
}

echo "== ABORT rule, 1 ms deadline: -VSM_ETIMEDOUT, the domain stays on ds1"
drv web ds2 abort >"$T/abort.out" 2>&1 || fail "abort case: $(cat "$T/abort.out")"
cat "$T/abort.out"
on_ds1 "after the aborted migration"

echo "== cancelled by the progress callback: -VSM_ECANCELED, the domain stays on ds1"
drv web ds2 cancel >"$T/cancel.out" 2>&1 || fail "cancel case: $(cat "$T/cancel.out")"
cat "$T/cancel.out"
on_ds1 "after the cancelled migration"

echo "== the migrating process killed during the block copy; a new context recovers"
if drv web ds2 crash >"$T/crash.out" 2>&1; then fail "the crash case did not crash: $(cat "$T/crash.out")"; fi
grep -q "^event: pass 1" "$T/crash.out" || fail "not killed in the copy: $(cat "$T/crash.out")"
drv web ds2 recover >"$T/recover.out" 2>&1 || fail "recovery: $(cat "$T/recover.out")"
grep -q "found on ds1" "$T/recover.out" || fail "after recovery: $(cat "$T/recover.out")"
on_ds1 "after the recovery of a killed migration"

echo "== refused: a target its host is not linked to; a deployment without a domain"
mkdir -p "$T/ds3"
[ "$(id -u)" = 0 ] && chown nobody:nogroup "$T/ds3"
vsm datastore add ds3 "file://$T/ds3" >/dev/null
drv web ds3 refuse >"$T/refuse.out" 2>&1 || fail "unlinked target: $(cat "$T/refuse.out")"
grep -q "not linked" "$T/refuse.out" || fail "unlinked target: $(cat "$T/refuse.out")"
vsm container create nodom --datastore ds1 --thin --disk d:1M >/dev/null
vsm attach nodom h1 >/dev/null
vsm deploy nodom d >/dev/null
drv nodom ds2 refuse >"$T/refuse2.out" 2>&1 || fail "no domain: $(cat "$T/refuse2.out")"
grep -q "not into a domain" "$T/refuse2.out" || fail "no domain: $(cat "$T/refuse2.out")"
vsm undeploy nodom d >/dev/null
vsm detach nodom >/dev/null
vsm container destroy nodom >/dev/null
on_ds1 "after the refusals"

echo "== live migration to ds2, the domain's disk written meanwhile"
# QEMU itself writes sda (qemu-io through the monitor) before, during and
# after the copy: every write must be on ds2 afterwards.
QDEV=$(virsh_u dumpxml "$DOM" | awk '/<target dev=.sda./ {f=1} f && /<alias name=/ {
	sub(/.*<alias name=./, ""); sub(/[\x27"].*/, ""); print; exit}')
[ -n "$QDEV" ] || fail "no alias for sda in the live XML"
hmp_write() { # PATTERN OFFSET
	virsh_u qemu-monitor-command "$DOM" --hmp "qemu-io -d $QDEV \"write -P $1 $2 64k\"" \
		>"$T/hmp.out" 2>&1 || return 1
	! grep -qi "error\|fail" "$T/hmp.out"
}
hmp_write 0x90 4M || fail "cannot write through the monitor: $(cat "$T/hmp.out")"
(
	for i in $(seq 1 24); do
		hmp_write $((0x90 + i)) $((4096 + i * 64))k || { echo "write $i failed" >"$T/writer.err"; exit 1; }
	done
) &
WRITER=$!
drv web ds2 live >"$T/live.out" 2>&1 || { wait "$WRITER" || true; fail "live migration: $(cat "$T/live.out")"; }
wait "$WRITER" || fail "the writer failed: $(cat "$T/writer.err" "$T/hmp.out" 2>/dev/null)"
# QEMU keeps qcow2 metadata in its cache: flushed, the files say it all.
virsh_u qemu-monitor-command "$DOM" --hmp "qemu-io -d $QDEV flush" >/dev/null
cat "$T/live.out"
WR=(-c "write -P 0x90 4M 64k")
for i in $(seq 1 24); do WR+=(-c "write -P $((0x90 + i)) $((4096 + i * 64))k 64k"); done
as_user qemu-io -f raw "${WR[@]}" "$T/ref-root.raw" >/dev/null
drv flat ds2 live >"$T/flat.out" 2>&1 || fail "live migration of flat: $(cat "$T/flat.out")"
cat "$T/flat.out"
grep -q "^event: start" "$T/live.out" && grep -q "^event: switchover" "$T/live.out" &&
	grep -q "^event: complete" "$T/live.out" || fail "migration events: $(cat "$T/live.out")"
R2=$(src_of sda)
D2=$(src_of sdb)
case "$R2" in "$T/ds2/"*) ;; *) fail "sda reads $R2, not a file of ds2";; esac
case "$D2" in "$T/ds2/"*) ;; *) fail "sdb reads $D2, not a file of ds2";; esac
virsh_u dumpxml "$DOM" | grep -q "<source file='$R2'" || fail "live XML does not name $R2"
as_user qemu-img compare -U -f raw "$T/ref-root.raw" "$R2" || fail "root on ds2 differs"
as_user qemu-img compare -U -f raw "$T/ref-data.raw" "$D2" || fail "data on ds2 differs"
S2=$(src_of sdc)
case "$S2" in "$T/ds2/"*.raw) ;; *) fail "sdc reads $S2, not a raw file of ds2";; esac
as_user qemu-img compare -U -f raw -F raw "$T/ref-scr.raw" "$S2" || fail "scratch on ds2 differs"
as_user qemu-img check -U -q "$R2" || fail "qemu-img check failed on $R2"
as_user qemu-img info -U "$R2" | grep -q "^backing file:" || fail "$R2 stands on no layer"
vsm container list >"$T/list"
[ "$(grep -c '^web ' "$T/list")" = 1 ] && grep -q "^web .*ds2" "$T/list" ||
	fail "container list after the migration: $(cat "$T/list")"
vsm checkpoint list web | grep -q "c1" || fail "checkpoint c1 did not travel"
left=$(ls "$T/ds1" | grep -v '^vsm-meta' || true)
[ -z "$left" ] || fail "ds1 keeps $left"
vsm --json container show web >"$T/show.json"
grep -q "\"$DOM\"" "$T/show.json" || grep -q "sda" "$T/show.json" ||
	fail "the record on ds2 does not remember the deployment: $(cat "$T/show.json")"

echo "== back to ds1 with the SYNC rule and a 1 ms deadline"
drv web ds1 sync >"$T/sync.out" 2>&1 || fail "sync migration: $(cat "$T/sync.out")"
cat "$T/sync.out"
# The CLI's --live takes the same path.
vsm migrate flat --datastore ds1 --live >"$T/flat2.out" 2>&1 ||
	fail "vsmctl migrate --live of flat: $(cat "$T/flat2.out")"
grep -q "^event: sync" "$T/sync.out" || fail "no sync event: $(cat "$T/sync.out")"
virsh_u qemu-monitor-command "$DOM" --hmp "qemu-io -d $QDEV flush" >/dev/null
R3=$(src_of sda)
D3=$(src_of sdb)
case "$R3" in "$T/ds1/"*) ;; *) fail "sda reads $R3, not a file of ds1";; esac
case "$D3" in "$T/ds1/"*) ;; *) fail "sdb reads $D3, not a file of ds1";; esac
as_user qemu-img compare -U -f raw "$T/ref-root.raw" "$R3" || fail "root back on ds1 differs"
as_user qemu-img compare -U -f raw "$T/ref-data.raw" "$D3" || fail "data back on ds1 differs"
as_user qemu-img compare -U -f raw -F raw "$T/ref-scr.raw" "$(src_of sdc)" ||
	fail "scratch back on ds1 differs"
left=$(ls "$T/ds2" | grep -v '^vsm-meta' || true)
[ -z "$left" ] || fail "ds2 keeps $left"
[ "$(virsh_u domstate "$DOM")" = running ] || fail "domain is $(virsh_u domstate "$DOM")"
echo "== done"
