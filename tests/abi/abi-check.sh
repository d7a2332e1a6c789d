#!/bin/sh
# libvsm's ABI against the baseline of a past release, and the linker
# version script against what the library exports (doc/abi.md).
#
# usage: abi-check.sh LIBVSM_SO HEADERS_DIR BASELINE [VERSION_SCRIPT]
#   LIBVSM_SO       the built shared library (build/libvsm.so.0.*)
#   HEADERS_DIR     its public headers (include/vsm)
#   BASELINE        abidw XML of a release (tests/abi/libvsm-0.1.abi)
#   VERSION_SCRIPT  default: lib/libvsm.syms next to this tests/ directory
#
# Fails on an incompatible change as abidiff judges it (exit status bit 3:
# a symbol removed or re-versioned, SONAME changed). A change abidiff calls
# compatible (bit 2) is printed; it passes when it is symbols added or a
# versioned struct grown at its end (suppressions.abignore), and fails when
# it is a changed signature or any other public type change, which abidiff
# also reports only as bit 2.
# Prints 'N checks, M failures' last; exit 1 on a failure. Without abidiff
# the version-script checks still run, and the script exits 77 (skipped)
# if they pass. ABIDIFF names another abidiff. Supersedes tests/abi.sh.
set -u

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
	echo "usage: $0 LIBVSM_SO HEADERS_DIR BASELINE [VERSION_SCRIPT]" >&2
	exit 2
fi
lib=$1 hdrs=$2 base=$3
here=$(cd "$(dirname "$0")" && pwd)
map=${4:-$here/../../lib/libvsm.syms}
supp=$here/suppressions.abignore

checks=0 failures=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
finish() {
	echo "$checks checks, $failures failures"
	[ "$failures" -eq 0 ] || exit 1
	exit "${1:-0}"
}

for f in "$lib" "$base" "$map"; do
	[ -r "$f" ] || { fail "cannot read $f"; finish; }
done
[ -d "$hdrs" ] || { fail "no headers directory $hdrs"; finish; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# --- the version script: "NODE SECTION ENTRY" per listed entry ----------
# Comments go first, then each of { } ; : stands alone as a token.
awk '
{ text = text $0 "\n" }
END {
	out = ""
	while ((i = index(text, "/*")) > 0) {
		out = out substr(text, 1, i - 1) " "
		text = substr(text, i + 2)
		j = index(text, "*/")
		if (j == 0) { print "ERROR unterminated-comment -"; exit }
		text = substr(text, j + 2)
	}
	text = out text
	gsub(/[{};:]/, " & ", text)
	n = split(text, tok, /[ \t\n]+/)
	# Outside a node, the word just before "{" names it; the word
	# between "}" and ";" names the node it inherits.
	node = ""; sect = ""; depth = 0; word = ""
	for (k = 1; k <= n; k++) {
		t = tok[k]
		if (t == "") continue
		if (depth == 0) {
			if (t == "{") { depth = 1; node = word; sect = "global"; continue }
			word = t
			continue
		}
		if (t == "}") { depth = 0; word = ""; continue }
		if (t == ":" || t == ";") continue
		if ((t == "global" || t == "local") && tok[k + 1] == ":") { sect = t; continue }
		print node, sect, t
	}
}' "$map" > "$tmp/map"

if grep -q '^ERROR' "$tmp/map" || ! [ -s "$tmp/map" ]; then
	fail "$map: cannot read the version script"
	finish
fi
awk '{ print $1 }' "$tmp/map" | uniq > "$tmp/nodes"

wild=$(awk '$2 == "global" && $3 ~ /[*?[]/ { print $1 ": " $3 }' "$tmp/map")
if [ -z "$wild" ]; then
	pass "no wildcard in a global section of $(basename "$map") ($(paste -sd ' ' "$tmp/nodes"))"
else
	fail "wildcard in a global section of $map (list each symbol by name):"
	echo "$wild" | sed 's/^/    /'
fi

# Names only: a wildcard has been reported above.
awk '$2 == "global" && $3 !~ /[*?[]/ { print $3 }' "$tmp/map" | sort > "$tmp/listed"
dup=$(uniq -d "$tmp/listed")
foreign=$(grep -v '^vsm_' "$tmp/listed")
if [ -z "$dup" ] && [ -z "$foreign" ]; then
	pass "$(wc -l < "$tmp/listed") vsm_* symbols listed, each in one node"
else
	fail "$map lists a symbol twice or outside the vsm_ namespace:"
	printf '%s\n%s\n' "$dup" "$foreign" | grep . | sed 's/^/    /'
fi

# --- what the library exports: "NAME NODE" -------------------------------
# Type A entries are the version nodes themselves.
nm -D --defined-only "$lib" | awk '$2 != "A" {
	name = $3; node = "-"
	if ((i = index(name, "@")) > 0) { node = substr(name, i); name = substr(name, 1, i - 1) }
	sub(/^@+/, "", node)
	print name, node
}' | sort > "$tmp/exported"
if ! [ -s "$tmp/exported" ]; then
	fail "$lib exports nothing (nm -D)"; finish
fi

bad=$(awk 'NR == FNR { if ($2 == "global") want[$3] = $1; next }
	!($1 in want) { print "    " $1 "@" $2 ": not listed by name"; next }
	want[$1] != $2 { print "    " $1 "@" $2 ": listed in " want[$1] }' "$tmp/map" "$tmp/exported")
if [ -z "$bad" ]; then
	pass "every one of the $(wc -l < "$tmp/exported") exported symbols is listed by name in its node"
else
	fail "exported symbols that the version script does not fix by name:"; echo "$bad"
fi

awk '{ print $1 }' "$tmp/exported" > "$tmp/exported-names"
stale=$(comm -23 "$tmp/listed" "$tmp/exported-names")
if [ -z "$stale" ]; then
	pass "every listed symbol is exported"
else
	fail "listed in $(basename "$map") but not exported (typo, or VSM_API missing):"
	echo "$stale" | sed 's/^/    /'
fi

# Every function a public header declares VSM_API must be exported: with
# no wildcard, one forgotten in the version script silently goes local.
# Declarations start a line with VSM_API; the name is the word before '('.
# vsm_backend_module_init is declared for modules to define (backend.h):
# the library calls it through dlsym and never exports it.
sed -n 's/^VSM_API[^(]*[^A-Za-z0-9_(]\([A-Za-z_][A-Za-z0-9_]*\) *(.*/\1/p' \
	"$hdrs"/*.h | grep -vx 'vsm_backend_module_init' | sort -u > "$tmp/declared"
missing=$(comm -23 "$tmp/declared" "$tmp/exported-names")
extra=$(comm -13 "$tmp/declared" "$tmp/exported-names")
if [ -s "$tmp/declared" ] && [ -z "$missing" ] && [ -z "$extra" ]; then
	pass "the $(wc -l < "$tmp/declared") VSM_API functions of $hdrs are the exported ones"
else
	fail "VSM_API declarations in $hdrs and exports differ:"
	[ -z "$missing" ] || echo "$missing" | sed 's/^/    declared, not exported (add it to the newest node): /'
	[ -z "$extra" ] || echo "$extra" | sed 's/^/    exported, not declared VSM_API in a public header: /'
fi

# The baseline's symbols stay in the node they shipped in, and each of its
# nodes holds nothing else: a symbol never moves, a new one never joins a
# node that has shipped.
sed -n "s/.*<elf-symbol name='\([^']*\)' version='\([^']*\)'.*/\2 \1/p" "$base" \
	| sort > "$tmp/base-syms"
if ! [ -s "$tmp/base-syms" ]; then
	fail "$base: no versioned symbols in the baseline"
else
	awk 'NR == FNR { shipped[$1] = 1; next }
	     ($1 in shipped) && $2 == "global" && $3 !~ /[*?[]/ { print $1, $3 }' \
		"$tmp/base-syms" "$tmp/map" | sort > "$tmp/node-syms"
	shipped=$(awk '{ print $1 }' "$tmp/base-syms" | uniq | paste -sd ' ')
	if cmp -s "$tmp/base-syms" "$tmp/node-syms"; then
		pass "$shipped: exactly the $(wc -l < "$tmp/base-syms") symbols of $(basename "$base"), in the same nodes"
	else
		fail "$shipped in $(basename "$map") differ from $(basename "$base") (< baseline, > version script):"
		diff "$tmp/base-syms" "$tmp/node-syms" | grep '^[<>]' | sed 's/^/    /'
	fi
fi

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" = libvsm.so.0 ]; then
	pass "SONAME $soname"
else
	fail "SONAME is '$soname', want libvsm.so.0"
fi

# --- abidiff against the baseline ----------------------------------------
# Without DWARF in the library abidiff compares symbols only and passes
# whatever became of the types (its --fail-no-debug-info does not stop
# that in libabigail 2.2): the library must be built with -g.
if readelf -S "$lib" | grep -q '[.]debug_info'; then
	pass "$(basename "$lib") carries DWARF for abidiff"
else
	fail "$lib has no .debug_info: build with -g (buildtype debug or debugoptimized)"
	finish
fi
abidiff=${ABIDIFF:-abidiff}
if ! command -v "$abidiff" > /dev/null 2>&1; then
	echo "SKIP: abidiff not installed (Debian: abigail-tools); baseline not compared"
	finish 77
fi
# Leaf mode names each changed type once, where it changed, instead of
# once per function that reaches it.
set -- --leaf-changes-only --headers-dir2 "$hdrs"
[ -r "$supp" ] && set -- "$@" --suppressions "$supp"
echo "$abidiff $* $base $lib"
"$abidiff" "$@" "$base" "$lib" > "$tmp/abidiff" 2>&1
st=$?
sed 's/^/    /' "$tmp/abidiff"
# abidiff's status is a bit field: 1 error, 2 usage error, 4 ABI changed,
# 8 incompatible change (a symbol removed or re-versioned, SONAME changed).
if [ $((st & 3)) -ne 0 ]; then
	fail "abidiff could not compare (status $st)"
	finish
elif [ $((st & 8)) -ne 0 ]; then
	fail "incompatible ABI change against $(basename "$base") (abidiff status $st)"
elif [ $((st & 4)) -ne 0 ]; then
	pass "no symbol removed or moved since $(basename "$base") (abidiff status $st: changes printed above)"
else
	pass "no ABI change against $(basename "$base")"
fi

# abidiff flags a changed signature or struct layout only as "changed"
# (bit 2), like an added symbol. Our rule is stricter (doc/abi.md): a
# signature never changes, and a struct changes only by growing at its end
# when it is versioned (suppressions.abignore); what remains counts here.
changed=$(awk '
/^Changed leaf types summary:/ { t = $5 }
/^Removed\/Changed\/Added functions summary:/ { f = $6 }
/^Removed\/Changed\/Added variables summary:/ { v = $6 }
END { if (t == "" || f == "" || v == "") print "?"; else print t + 0, f + 0, v + 0 }' "$tmp/abidiff")
case $changed in
"0 0 0") pass "no public signature or struct layout changed (beyond versioned growth)" ;;
"?") if [ $((st & 4)) -eq 0 ]; then
	pass "no public signature or struct layout changed"
     else
	fail "cannot read abidiff's summary lines"
     fi ;;
*) # shellcheck disable=SC2086 # three numbers, split on purpose
   set -- $changed
   fail "changed since $(basename "$base"): $1 leaf types, $2 functions, $3 variables (see above)" ;;
esac
finish
