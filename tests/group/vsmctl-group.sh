#!/bin/bash
# vsmctl's group commands end to end (doc/groups.md): create, add, remove,
# list, show (text and --json), plan, checkpoint, revert,
# delete-checkpoint, clone; refusals print a message and change nothing.
# usage: vsmctl-group.sh VSMCTL
set -euo pipefail
V=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/vsmctl-group.XXXXXX")
trap 'rm -rf "$T"' EXIT
export VSM_STATE_DIR=$T/state
mkdir -p "$T/ds" "$T/ds2"
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { $V group show "$1" --json; }
count() { python3 -c "import json,sys; d=json.load(sys.stdin); print(len(d['$1']))"; }

$V datastore add ds1 "file://$T/ds" >/dev/null
$V datastore add ds2 "file://$T/ds2" >/dev/null
for c in web db; do
	$V container create $c --datastore ds1 --disk d0:8M --thin >/dev/null
done
$V container create cache --datastore ds2 --disk d0:8M --thin >/dev/null
$V container create extra --datastore ds2 --disk d0:8M --thin >/dev/null

$V group create app web db | grep -q "group 'app' created on datastore 'ds1' with 2" ||
	fail create
$V group create app web 2>"$T/err" && fail "duplicate group name accepted"
grep -q "already exists" "$T/err" || fail "duplicate name message: $(cat "$T/err")"
$V group create other web 2>"$T/err" && fail "container in two groups accepted"
grep -q "member of group 'app'" "$T/err" || fail "two groups message: $(cat "$T/err")"
# The group is no container: listings do not show it.
$V container list | grep -q "group:" && fail "group record listed as a container"
$V group add app ds2/cache | grep -q "added" || fail add
$V group add app extra >/dev/null
[ "$(json app | count members)" = 4 ] || fail "4 members after add"
$V group remove app extra | grep -q removed || fail remove
[ "$(json app | count members)" = 3 ] || fail "3 members after remove"
$V group list | grep -q "app .*3 member" || fail list
[ "$($V --json group list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
	fail "json list"
# A member is not destroyed.
$V container destroy web 2>"$T/err" && fail "member destroyed"
grep -q "member of group 'app'" "$T/err" || fail "destroy message: $(cat "$T/err")"

# The plan.
$V group plan app --boot db:1 --boot web:2:AFTER=db --boot cache:0 \
	--net web:52:54:00:12:34:56,br0,10.0.0.5/24,10.0.0.1,10.0.0.53 \
	--net db:52:54:00:12:34:57,default >/dev/null || fail plan
json app >"$T/show.json"
python3 - "$T/show.json" <<'PY' || fail "plan in show --json"
import json, sys
d = json.load(open(sys.argv[1]))
m = {x['name']: x for x in d['members']}
assert m['web']['boot'] == {'priority': 2, 'after': ['db']}, m['web']
assert m['db']['boot']['priority'] == 1
assert m['web']['net'] == {'mac': '52:54:00:12:34:56', 'network': 'br0', 'ip': '10.0.0.5',
                           'prefix': 24, 'gateway': '10.0.0.1', 'dns': '10.0.0.53'}, m['web']
assert m['db']['net']['network'] == 'default' and m['db']['net']['ip'] is None
assert m['cache']['net'] is None
assert m['cache']['datastore'] == 'ds2'
PY
$V group show app | grep -q "web .*boot priority 2 after db net 52:54:00:12:34:56,br0,10.0.0.5/24" ||
	fail "plan in show"
$V group plan app --boot db:1:AFTER=web 2>"$T/err" && fail "boot cycle accepted"
grep -q "cycle" "$T/err" || fail "cycle message: $(cat "$T/err")"
$V group plan app --net db:zz:54:00:12:34:57,x 2>"$T/err" && fail "bad MAC accepted"
grep -q "MAC" "$T/err" || fail "MAC message: $(cat "$T/err")"
$V group plan app --boot nobody:1 2>"$T/err" && fail "unknown member accepted"
cmp -s "$T/show.json" <(json app) || fail "a refused plan changed the group"

# Checkpoints.
$V group checkpoint app c1 | grep -q "checkpoint 'c1' created in 3" || fail checkpoint
for c in web db ds2/cache; do
	$V checkpoint list $c | grep -qE "(^|[ -])c1 " || fail "member $c has no c1"
done
$V group show app | grep -q "c1 .*web:c1 db:c1 cache:c1" || fail "checkpoint in show"
$V group checkpoint app c1 2>"$T/err" && fail "duplicate group checkpoint accepted"
# A member that already has the name: refused up front, nothing made.
$V checkpoint create db c2 >/dev/null
$V group checkpoint app c2 --timeout 5 2>"$T/err" && fail "member with c2 accepted"
grep -q "member 'db' already has a checkpoint 'c2'" "$T/err" || fail "c2 message: $(cat "$T/err")"
$V checkpoint list web | grep -qE "(^|[ -])c2 " && fail "partial checkpoint left in web"
$V checkpoint delete db c2 >/dev/null
$V group checkpoint app c2 >/dev/null
$V group checkpoint app c3 --timeout 0 2>/dev/null && fail "--timeout 0 accepted"
# Revert and delete.
$V group revert app c1 | grep -q "reverted to checkpoint 'c1'" || fail revert
$V group clone app c1 dr | grep -q "(3 member" || fail clone
$V group show dr --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
m = {x["name"]: x for x in d["members"]}
assert set(m) == {"web-dr", "db-dr", "cache-dr"}, m
assert m["web-dr"]["boot"]["after"] == ["db-dr"]
assert m["cache-dr"]["datastore"] == "ds2"' || fail "clone's members and plan"
$V group delete-checkpoint app c2 | grep -q "deleted checkpoint 'c2'" || fail delete
for c in web db ds2/cache; do
	$V checkpoint list $c | grep -qE "(^|[ -])c2 " && fail "member $c still has c2"
done
[ "$(json app | count checkpoints)" = 1 ] || fail "one checkpoint left"
$V group revert app c2 2>"$T/err" && fail "revert to a deleted checkpoint"
grep -q "no checkpoint 'c2'" "$T/err" || fail "revert message"
for f in "$T"/ds/*.qcow2 "$T"/ds2/*.qcow2; do
	[ -e "$f" ] || continue
	qemu-img check -q "$f" || fail "qemu-img check $f"
done
rc=0; $V group bogus app 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "usage error exit status $rc"
echo "ok: vsmctl group commands"
