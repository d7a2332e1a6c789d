#!/bin/bash
# The layer rules fail the build when broken (doc/architecture.md). Each
# case plants one wrong include in a copy of the tree and expects the
# failure the build would give: the compiler for an upper layer's header
# on a lower layer's include path, tools/check-layers.py for the paths
# the include path cannot stop. The untouched copy must pass.
# usage: layers.sh SRCDIR CC
set -u
src=$1
cc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
checks=0
failures=0
ok()  { checks=$((checks + 1)); echo "ok: $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }

fresh() {
	rm -rf "$tmp/t"
	mkdir -p "$tmp/t"
	cp -r "$src/lib" "$src/backends" "$src/include" "$src/tools" "$tmp/t/"
}
layers() { python3 "$tmp/t/tools/check-layers.py" "$tmp/t/lib" "$tmp/t/backends" "$tmp/stamp" \
	>"$tmp/out" 2>&1; }
# compile FILE DIRS...: as the build compiles a file of a layer whose
# include path is DIRS (lib/meson.build), syntax only.
compile() {
	local f=$1; shift
	local args=(-std=c11 -D_GNU_SOURCE -fsyntax-only -I"$tmp/t/include")
	for d in "$@"; do args+=(-I"$tmp/t/lib/$d"); done
	"$cc" "${args[@]}" -iquote /nonexistent "$tmp/t/$f" >"$tmp/out" 2>&1
}

fresh
layers && ok "the tree as it is passes check-layers" || bad "clean tree refused: $(cat "$tmp/out")"
compile lib/store/meta.c store io base && ok "lib/store/meta.c compiles on its layer's path" ||
	bad "meta.c does not compile on store's path: $(head -5 "$tmp/out")"

# 1. A lower layer includes an upper layer's header by name.
fresh
echo '#include "ctx.h"' >>"$tmp/t/lib/store/meta.c"
if compile lib/store/meta.c store io base; then bad "store including ctx.h compiled"
else grep -q "ctx.h" "$tmp/out" && ok "store including engine's ctx.h: $(grep -m1 ctx.h "$tmp/out" | sed 's|.*/||')" ||
	bad "unexpected error: $(head -3 "$tmp/out")"; fi

# 2. The same by a relative path, which the include path cannot stop.
fresh
echo '#include "../engine/ctx.h"' >>"$tmp/t/lib/store/meta.c"
layers && bad "relative include across layers passed" ||
	{ grep -q 'lib/store/meta.c: #include "../engine/ctx.h"' "$tmp/out" &&
	  ok "relative include across layers refused" || bad "wrong message: $(cat "$tmp/out")"; }

# 3. A backend includes a header of lib/.
fresh
echo '#include "../../lib/engine/ctx.h"' >>"$tmp/t/backends/file/file.c"
layers && bad "backend including lib/ passed" ||
	{ grep -q 'backends/file/file.c' "$tmp/out" && ok "backend including lib/ refused" ||
	  bad "wrong message: $(cat "$tmp/out")"; }

# 4. A core file names a built-in backend.
fresh
echo 'extern int vsm__iscsi_backend_ops;' >>"$tmp/t/lib/ops/attach.c"
layers && bad "lib/ops naming a built-in backend passed" ||
	{ grep -q 'names a built-in backend' "$tmp/out" && ok "lib/ops naming a built-in backend refused" ||
	  bad "wrong message: $(cat "$tmp/out")"; }

# 5. A backend's ops called outside the adapter.
fresh
printf 'static void f(vsm_dstore *ds) { ds->be->ops.device_delete(ds->h, "k", 0); }\n' \
	>>"$tmp/t/lib/ops/attach.c"
layers && bad "direct backend call passed" ||
	{ grep -q 'calls a backend' "$tmp/out" && ok "direct backend call outside becall.c refused" ||
	  bad "wrong message: $(cat "$tmp/out")"; }

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
