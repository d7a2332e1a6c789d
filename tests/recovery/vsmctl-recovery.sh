#!/bin/bash
# vsmctl's group backup and recovery end to end: a group of two with a
# plan, a full and an incremental group backup, recovery onto another
# datastore (data compared with qemu-img, the plan shown again), steps as
# JSON lines, a recovery into a datastore that already holds the names
# refused with nothing left behind; recovery with --host and --start onto
# libvirt's test driver, domains started in the plan's boot order.
# usage: vsmctl-recovery.sh VSMCTL
set -uo pipefail
V=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export VSM_STATE_DIR=$T/state
mkdir -p "$T/ds" "$T/ds2" "$T/ds3"
checks=0
failures=0
check() { # check NAME COMMAND...: the command must succeed
	local name=$1
	shift
	checks=$((checks + 1))
	if "$@"; then echo "ok: $name"; else failures=$((failures + 1)); echo "FAIL: $name"; fi
}
top() { # top DS-DIR CONTAINER DEVICE: the device's top file
	local uuid
	uuid=$($V --json container show "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
	echo "$1/$uuid-$3.qcow2"
}

$V datastore add ds "file://$T/ds" >/dev/null
$V datastore add ds2 "file://$T/ds2" >/dev/null
for c in web db; do
	$V container create "$c" --datastore ds --disk root:8M:qcow2 --thin >/dev/null
	head -c 1M /dev/urandom | $V image write "ds/$c:root" 0
done
$V group create g web db >/dev/null
$V group plan g --boot db:1 --boot web:2:AFTER=db \
	--net web:52:54:00:aa:bb:cc,default,192.168.7.10/24,192.168.7.1,192.168.7.2 >/dev/null
check "full group backup" bash -c "$V group backup g '$T/bk' --checkpoint p1 | grep -q \"full backup of group 'g' (2 members)\""
head -c 64K /dev/urandom | $V image write ds/db:root 2097152
check "incremental group backup" bash -c "$V group backup g '$T/bk' --incremental-from p1 --checkpoint p2 | grep -q incremental"
check "the set's manifest" test -f "$T/bk/g.p2.group.json"
check "incremental member file is small" bash -c "[ \$(stat -c %s '$T/bk/g.p2.db.bk') -lt 100000 ]"
check "recover onto ds2" bash -c "$V group recover '$T/bk' --datastore ds2 --name g2 >'$T/out' && grep -q \"group 'g2' recovered\" '$T/out' && grep -q '^restore *db' '$T/out'"
for c in web db; do
	check "member $c reads as at p2 (qemu-img compare)" \
		qemu-img compare -q "$(top "$T/ds" "ds/$c" root)" "$(top "$T/ds2" "ds2/$c" root)"
done
check "the plan came back" bash -c "$V group show ds2/g2 | grep -q '52:54:00:aa:bb:cc'"
n=$(ls "$T/ds2" | wc -l)
check "names taken: refused" bash -c "! $V --json group recover '$T/bk' --datastore ds2 --name g3 >'$T/out' 2>'$T/err' && grep -q 'exists' '$T/err' && head -1 '$T/out' | python3 -c 'import json,sys; assert json.loads(sys.stdin.readline())[\"step\"] == \"chain\"'"
check "nothing left behind" bash -c "[ \$(ls '$T/ds2' | wc -l) = $n ]"
# With a host whose hypervisor is libvirt's test driver: deployed, defined
# and started tier by tier (db, then web after it), in one vsmctl call.
$V datastore add ds3 "file://$T/ds3" >/dev/null
$V host add h1 --hypervisor test:///default >/dev/null
$V host link h1 ds3 >/dev/null
check "recover --host --start" bash -c "$V group recover '$T/bk' --datastore ds3 --name g4 --host h1 --start >'$T/start'"
at() { grep -n "^$1 *$2 " "$T/start" | head -1 | cut -d: -f1; }
check "started in boot order" bash -c "[ -n '$(at running db)' ] && [ '$(at running db)' -lt '$(at start web)' ] && [ -n '$(at running web)' ]"
check "deployed before defined" bash -c "[ '$(at deploy web)' -lt '$(at define web)' ]"
check "web's NIC from the plan" grep -q "^define *web .*52:54:00:aa:bb:cc" "$T/start"
check "usage error exits 2" bash -c "$V group recover '$T/bk' 2>/dev/null; [ \$? = 2 ]"
echo "$checks checks, $failures failures"
[ "$failures" = 0 ]
