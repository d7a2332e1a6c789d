#!/bin/sh
# Generate the HTML API reference of include/vsm/ into OUTDIR/html with
# Doxygen (doc/Doxyfile.in), then check that every symbol lib/libvsm.syms
# exports is documented (tools/check-api-docs.py). A Doxygen warning (an
# undocumented member, a broken reference) fails it too.
# usage: api-docs.sh SOURCE_DIR OUTDIR VERSION
set -eu
src=$1
out=$2
version=$3
command -v doxygen >/dev/null || { echo "FAIL: doxygen is not installed (apt-get install doxygen)" >&2; exit 1; }
mkdir -p "$out"
sed -e "s|@SRCDIR@|$src|g" -e "s|@OUTDIR@|$out|g" -e "s|@VERSION@|$version|g" \
	"$src/doc/Doxyfile.in" >"$out/Doxyfile"
rm -rf "$out/html" "$out/xml"
doxygen "$out/Doxyfile"
python3 "$src/tools/check-api-docs.py" "$src/lib/libvsm.syms" "$out/xml"
echo "API reference: $out/html/index.html"
