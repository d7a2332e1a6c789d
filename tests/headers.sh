#!/bin/sh
# Each public header must compile alone, as C99, pedantic, warnings as
# errors: a caller may include any one of them first.
# usage: headers.sh CC INCLUDE_DIR HEADER...
set -u
cc=$1; inc=$2; shift 2
fail=0
for h in "$@"; do
	name=$(basename "$h")
	if ! printf '#include <vsm/%s>\nint vsm_header_test_%s;\n' "$name" "$(echo "$name" | tr -c 'a-z0-9\n' _)" |
	     $cc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$inc" -x c -; then
		echo "FAIL: vsm/$name does not compile alone"
		fail=1
	else
		echo "ok: vsm/$name"
	fi
done
exit $fail
