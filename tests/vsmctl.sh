#!/bin/bash
# vsmctl end to end: the command contract other tools script against.
# usage: vsmctl.sh PATH_TO_VSMCTL
set -u
vsmctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export VSM_STATE_DIR=$tmp/state
failures=0
checks=0

ok()   { checks=$((checks + 1)); echo "ok: $*"; }
bad()  { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }

# run: expect success; output in $out
run() {
	if out=$("$vsmctl" "$@" 2>"$tmp/err"); then ok "vsmctl $*"
	else bad "vsmctl $* exited $?: $(cat "$tmp/err")"; fi
}
# refuse CODE_SUBSTRING ARGS...: expect failure with the library's message
refuse() {
	local want=$1; shift
	if "$vsmctl" "$@" >/dev/null 2>"$tmp/err"; then bad "vsmctl $* succeeded"
	elif grep -q "^vsmctl: .*$want" "$tmp/err"; then ok "vsmctl $* refused: $(cat "$tmp/err")"
	else bad "vsmctl $* refused without '$want': $(cat "$tmp/err")"; fi
}
# jget EXPR: evaluate a Python expression on the last JSON output ($out as j)
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }
expect() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', want '$2'"; fi; }

mkdir -p "$tmp/ds1"
run datastore add ds1 "file://$tmp/ds1"
run --json datastore show ds1
expect "$(jget 'j["uri"]')" "file://$tmp/ds1" "datastore show --json uri"
expect "$(jget 'j["capacity"] > 0')" "True" "datastore capacity reported"
run datastore list
expect "$(echo "$out" | awk '{print $1}')" "ds1" "datastore list"
run host add h1
run host add h2 --hypervisor qemu:///system
run host link h1 ds1
run --json host list
expect "$(jget 'j[0]["datastores"]')" "['ds1']" "host list shows the link"
expect "$(jget 'j[1]["hypervisor_uri"]')" "qemu:///system" "host hypervisor URI"

run --json container create web --datastore ds1 --disk root:64M --disk data:1G:raw
expect "$(jget 'len(j["devices"])')" "2" "two devices created"
expect "$(jget 'j["devices"][1]["size"]')" "1073741824" "SIZE suffixes are binary"
expect "$(jget 'j["devices"][0]["format"]')" "raw" "default format raw"
uuid=$(jget 'j["uuid"]')
run container list
expect "$(echo "$out" | awk '{print $1}')" "web" "container list"
run --json container show web
expect "$(jget 'j["uuid"]')" "$uuid" "show finds the same container"
expect "$(jget 'j["attached_host"]')" "None" "not attached yet"

refuse "not attached" deploy web root
refuse "not linked" attach web h2
run attach web h1
# A target or bus outside libvirt's grammar is refused, never written into
# the <disk> (it used to add a second <source> or break the XML).
refuse "deploy: bus 'virtio'/><source file='/etc/shadow'/><x a='' is not one of virtio, scsi" \
	deploy web root --bus "virtio'/><source file='/etc/shadow'/><x a='"
refuse "deploy: target 'vd'a' is not a disk name" deploy web root --target "vd'a"
refuse "is not one of virtio" deploy web root --bus ""
refuse "is not a disk name" deploy web root --target "sda' bus='ide"
run --json container show web
expect "$(jget 'j["devices"][0]["locator"]')" "None" "refused deploys deployed nothing"
run deploy web root
loc=$out
case "$loc" in file://"$tmp"/ds1/*) ok "deploy prints the locator";; *) bad "locator '$loc'";; esac
[ -f "${loc#file://}" ] && ok "locator names an existing file" || bad "no file at $loc"
run --json deploy web data
expect "$(jget '"<disk type=" in j["disk_xml"]')" "True" "deploy --json has the disk XML"
expect "$(jget 'j["host"]')" "h1" "deployed on h1"
run --json container show ds1/web
expect "$(jget 'j["devices"][0]["locator"]')" "$loc" "show lists the locator"
refuse "deployed" detach web
refuse "attached to host 'h1'" container destroy web
run undeploy web root
refuse "not deployed" undeploy web root
run detach web --force
run container destroy web
refuse "does not exist" container show web
expect "$(ls "$tmp/ds1" | wc -l)" "0" "destroy removed every device file"

refuse "already exists" datastore add ds1 "file://$tmp/other"
# A directory that is not there is refused unless --create asks for it.
refuse "datastore 'nodir': directory '$tmp/nodir' does not exist (pass VSM_DATASTORE_ADD_CREATE / --create to make it)" \
	datastore add nodir "file://$tmp/nodir"
[ -e "$tmp/nodir" ] && bad "a refused datastore add made the directory" || ok "nothing made"
run datastore add made "file://$tmp/made/sub" --create
[ -f "$tmp/made/sub/.vsm/meta" ] && ok "--create made the directory" || bad "--create made nothing"
refuse "unknown option '--bogus'" datastore add x "file://$tmp/x" --bogus
# file URIs are percent-decoded; NUL, bad escapes and '..' are refused.
mkdir -p "$tmp/my dir"
run datastore add spaced "file://$tmp/my%20dir"
[ -f "$tmp/my dir/.vsm/meta" ] && ok "file:// URI percent-decoded" || bad "my%20dir not decoded"
refuse "encodes a NUL byte" datastore add z "file://$tmp/a%00b" --create
refuse "malformed escape '%zz'" datastore add z "file://$tmp/a%zz" --create
refuse "'..' path component" datastore add z "file://$tmp/a/%2e%2e/b" --create
[ -e "$tmp/a" ] && bad "a refused URI made a directory" || ok "refused URIs made nothing"
refuse "no backend handles URI scheme 'nfs'" datastore add ds2 nfs://x/y
refuse "bad --disk" container create x --datastore ds1 --disk nosize
refuse "needs --datastore" container create x --disk a:1M
refuse "has size 0" container create x --datastore ds1 --disk a:0
refuse "outside" container create "x y" --datastore ds1 --disk a:1M
refuse "does not exist" attach ghost h1
refuse "unknown command" frobnicate
if "$vsmctl" --state "$tmp/elsewhere" datastore list >/dev/null; then
	[ -f "$tmp/elsewhere/catalog.db" ] && ok "--state overrides VSM_STATE_DIR" || bad "--state ignored"
else bad "--state"; fi

# A second catalog adopts the same datastore and sees its containers.
run container create db --datastore ds1 --disk d:1M
run --state "$tmp/state2" datastore add again "file://$tmp/ds1"
run --state "$tmp/state2" --json container list
expect "$(jget 'j[0]["name"]')" "db" "rescan from a fresh state dir"

# qcow2 devices and linked clones of a golden image on the datastore.
qemu-img create -q -f qcow2 "$tmp/ds1/golden.qcow2" 32M
run --json container create vm --datastore ds1 --base root=golden.qcow2 --disk swap:8M:qcow2
expect "$(jget 'j["devices"][1]["name"], j["devices"][1]["size"], j["devices"][1]["format"]')" \
	"root 33554432 qcow2" "--base takes the golden image's size"
root=$("$vsmctl" --json container show vm | python3 -c 'import json,sys; print([d for d in json.load(sys.stdin)["devices"] if d["name"]=="root"][0]["name"])')
expect "$root" "root" "overlay device listed"
qemu-img check -q "$tmp"/ds1/*-root.qcow2 && ok "qemu-img check: overlay clean" || bad "overlay check"
qemu-img info "$tmp"/ds1/*-root.qcow2 | grep -q "backing file: golden.qcow2" && ok "backing chain recorded" || bad "no backing"
refuse "not a device of this datastore" container create vm2 --datastore ds1 --base root=../x
run container destroy vm
[ -f "$tmp/ds1/golden.qcow2" ] && ok "golden image kept" || bad "golden image deleted"

# Paths with every character XML escapes survive into the <disk> element
# and come back out of a real XML parser unchanged.
odd="$tmp/it's & <odd> \"ds\""
mkdir -p "$odd"
run datastore add odd "file://$odd"
run host link h1 odd
run container create oddc --datastore odd --disk d:1M
run attach oddc h1
run --json deploy oddc d --target sdb --bus scsi
xmlcheck() {
	python3 -c '
import json, sys, xml.etree.ElementTree as ET
j = json.loads(sys.stdin.read())
d = ET.fromstring(j["disk_xml"])
src = d.findall("source")
t = d.findall("target")
print(len(src), src[0].get("file") == j["path"], len(t), t[0].get("dev"), t[0].get("bus"),
      j["path"].startswith(sys.argv[1] + "/"))' "$odd" <<<"$out"
}
expect "$(xmlcheck)" "1 True 1 sdb scsi True" "odd path: one <source>, path and target round-trip"
expect "$(jget "\"'\" in j['locator'] or ' ' in j['locator']")" "False" "locator URI is percent-encoded"
run undeploy oddc d
run detach oddc
run container destroy oddc
# datastore check: orphans (a device named as libvsm names them that no
# record references) are listed, kept within the grace period, removed by
# --repair after it; other files are never touched. Exit 0 when no orphan
# remains, 1 when some do, 2 for bad usage.
# run_rc WANT ARGS...: expect exit status WANT; output in $out
run_rc() {
	local want=$1 rc; shift
	out=$("$vsmctl" "$@" 2>"$tmp/err"); rc=$?
	if [ "$rc" = "$want" ]; then ok "vsmctl $* exited $rc"
	else bad "vsmctl $* exited $rc, want $want: $(cat "$tmp/err")"; fi
}
orph=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9-d0.raw
run_rc 0 datastore check ds1
expect "$(echo "$out" | head -1 | grep -c ', 0 orphans$')" "1" "check: a clean datastore has none"
truncate -s 1M "$tmp/ds1/$orph"
truncate -s 1M "$tmp/ds1/notes.raw"
run_rc 1 --json datastore check ds1
expect "$(jget 'j["remaining"], j["orphans"][0]["key"], j["orphans"][0]["state"]')" \
	"1 $orph young" "check --json: a new orphan is young"
expect "$(jget 'j["foreign"] >= 2, j["referenced"]')" "True 2" "check: golden image and user file are not orphans"
run_rc 1 datastore check ds1 --repair
[ -f "$tmp/ds1/$orph" ] && ok "--repair keeps a young orphan" || bad "--repair removed a young orphan"
echo "$out" | grep -q "^$orph .* young " && ok "check lists the orphan" || bad "check output: $out"
echo "$out" | grep -q "^1 orphans remain$" && ok "check says what remains" || bad "check output: $out"
touch -d '2 hours ago' "$tmp/ds1/$orph"
run_rc 1 datastore check ds1
echo "$out" | grep -q "^$orph .* found " && ok "an old orphan is found" || bad "check output: $out"
[ -f "$tmp/ds1/$orph" ] && ok "check without --repair removes nothing" || bad "check removed a file"
run_rc 0 datastore check ds1 --repair --json
expect "$(jget 'j["orphans"][0]["state"], j["remaining"]')" "removed 0" "--repair removes an orphan past the grace"
[ ! -e "$tmp/ds1/$orph" ] && ok "orphan file gone" || bad "orphan file still there"
truncate -s 1M "$tmp/ds1/$orph"
run_rc 1 datastore check ds1 --repair --grace 60
run_rc 0 datastore check ds1 --repair --grace 0
[ ! -e "$tmp/ds1/$orph" ] && ok "--grace 0 removes a new orphan" || bad "--grace 0 kept it"
[ -f "$tmp/ds1/notes.raw" ] && [ -f "$tmp/ds1/golden.qcow2" ] && ok "user files kept" || bad "user file removed"
run --json container show db
expect "$(jget 'len(j["devices"])')" "1" "container 'db' untouched by the repair"
run_rc 2 datastore check ds1 --grace -5
run_rc 2 datastore check ds1 --frobnicate
refuse "not registered" datastore check nope

run demo "$tmp/demo"
echo "$out" | grep -q "done: every step succeeded" && ok "demo completes" || bad "demo output"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
