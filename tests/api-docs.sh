#!/bin/sh
# The API reference builds without a Doxygen warning and documents every
# exported symbol (doc/api-docs.sh), into a temp dir removed on exit.
# usage: api-docs.sh SOURCE_DIR VERSION
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$1/doc/api-docs.sh" "$1" "$tmp" "$2"
