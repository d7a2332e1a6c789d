#!/bin/bash
# The out-of-tree backend as a module: vsmctl, built without it, reaches
# it through $VSM_BACKEND_DIR (datastore add, the container's whole life,
# container list); with the module directory gone, `container list` names
# the datastore as "backend not loaded" and exits 1.
# usage: module-run.sh PATH_TO_VSMCTL MODULE_DIR (holding ext-backend.so)
set -u
vsmctl=$1
moddir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export VSM_STATE_DIR=$tmp/state
export VSM_BACKEND_DIR=$moddir
failures=0
checks=0

ok()   { checks=$((checks + 1)); echo "ok: $*"; }
bad()  { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
# run ARGS...: expect success; stdout in $out
run() {
	if out=$("$vsmctl" "$@" 2>"$tmp/err"); then ok "vsmctl $*"
	else bad "vsmctl $* exited $?: $(cat "$tmp/err")"; fi
}
# run_rc RC ARGS...: expect exit status RC; stdout in $out
run_rc() {
	local want=$1 rc=0; shift
	out=$("$vsmctl" "$@" 2>"$tmp/err") || rc=$?
	if [ "$rc" -eq "$want" ]; then ok "vsmctl $* exited $rc"
	else bad "vsmctl $* exited $rc, want $want: $(cat "$tmp/err")"; fi
}
expect() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', want '$2'"; fi; }
has() { if grep -q -- "$2" <<<"$1"; then ok "$3"; else bad "$3: no '$2' in: $1"; fi; }

[ -f "$moddir/ext-backend.so" ] && ok "module built" || bad "no $moddir/ext-backend.so"
mkdir -p "$tmp/ds" "$tmp/ds2"

# --- with the module ---
run datastore add ext1 "extfile://$tmp/ds"
run datastore add ext2 "extfile-nocaw://$tmp/ds2"
run host add h1
run host link h1 ext1
run host link h1 ext2
run container create web --datastore ext1 --disk root:64M:qcow2 --disk data:8M
run container create db --datastore ext2 --disk root:32M:qcow2
run attach web h1
run deploy web root
path=${out#file://}
[ -f "$path" ] && ok "deployed device is a file in the datastore" || bad "locator '$out'"

# The guest writes through the deployed path: a qcow2 image.
head -c 65536 /dev/urandom >"$tmp/data"
"$vsmctl" image write "$path" 1048576 <"$tmp/data" >/dev/null 2>"$tmp/err" &&
	ok "image write" || bad "image write: $(cat "$tmp/err")"
"$vsmctl" image read "$path" 1048576 65536 >"$tmp/back" 2>"$tmp/err" &&
	cmp -s "$tmp/data" "$tmp/back" && ok "image read back" || bad "image read: $(cat "$tmp/err")"
run image check "$path"
if command -v qemu-img >/dev/null; then
	qemu-img check -q "$path" && ok "qemu-img check clean" || bad "qemu-img check $path"
fi

run checkpoint create web cp1 --stopped
run checkpoint list web
has "$out" "cp1" "checkpoint listed"
run container show web
path2=$(sed -n 's|.*file://\([^ ]*\).*|\1|p' <<<"$out" | head -1)
if [ -n "$path2" ]; then
	"$vsmctl" image read "$path2" 1048576 65536 >"$tmp/back2" 2>"$tmp/err" &&
		cmp -s "$tmp/data" "$tmp/back2" && ok "data reads back over the checkpoint" ||
		bad "image read $path2: $(cat "$tmp/err")"
fi

# The image API reaches the module's devices by address, through the
# backend's own device_open (not by path): read, map, check.
run image read ext1/web:root 1048576 65536
"$vsmctl" image read ext1/web:root 1048576 65536 >"$tmp/back3" 2>"$tmp/err" &&
	cmp -s "$tmp/data" "$tmp/back3" && ok "image read ext1/web:root returns the data" ||
	bad "image read ext1/web:root: $(cat "$tmp/err")"
run image map ext1/web:root
has "$out" "1048576" "image map ext1/web:root shows the written extent"
run image check ext1/web:root
run image check ext2/db:root
run_rc 1 image read ext1/web:nosuch 0 512
run_rc 1 image read ext1/../web:root 0 512

run container list
has "$out" "^web  *ext1  *h1" "list shows web on ext1"
has "$out" "^db  *ext2" "list shows db on ext2"
run datastore list
has "$out" "ext1" "datastore list shows ext1"

# --- without it: the datastore is still registered, its backend is not ---
VSM_BACKEND_DIR=$tmp/no-modules run_rc 1 container list
has "$out" "^ext1 .*(backend 'extfile' not loaded)" "list names ext1 as backend not loaded"
has "$out" "^ext2 .*(backend 'extfile-nocaw' not loaded)" "list names ext2 as backend not loaded"
has "$(cat "$tmp/err")" "warning: containers of datastore 'ext1' not listed" "warning on stderr"
VSM_BACKEND_DIR=$tmp/no-modules run_rc 1 container list --datastore ext1
has "$out" "backend 'extfile' not loaded" "list --datastore names it too"
VSM_BACKEND_DIR= run_rc 1 container list
has "$out" "not loaded" "VSM_BACKEND_DIR='' loads no module"

# --- with it again: finish the life ---
run undeploy web root
run detach web
run container destroy web
run container destroy db
run_rc 0 container list
expect "$out" "" "list empty after destroy"
expect "$(ls "$tmp/ds" "$tmp/ds2" | grep -cv '^\(/.*:\)\?$')" "0" "no device files left"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
