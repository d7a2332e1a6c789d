#!/bin/bash
# man vsmctl keeps up with vsmctl: every command and every option that
# `vsmctl help` shows is in doc/vsmctl.1, and the page renders without a
# groff warning. Also the help forms: `help COMMAND`, `COMMAND --help`.
# usage: vsmctl-man.sh VSMCTL MANPAGE
set -euo pipefail
VSMCTL=$1
MAN=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v groff >/dev/null || fail "groff is not installed (apt-get install groff-base)"

warn=$(groff -man -Tutf8 -ww -z "$MAN" 2>&1) || fail "groff failed: $warn"
[ -z "$warn" ] || fail "groff warnings: $warn"
# The page as a reader sees it, hyphens and all.
text=$(groff -man -Tascii -P-cbou "$MAN" 2>/dev/null | tr -s ' ')

help=$("$VSMCTL" help)
n=0
# Commands: the first word of each usage line, and every form after " | ".
cmds=$(printf '%s\n' "$help" | grep '^  [a-z]' | sed 's/^  //' |
	awk '{print $1} {for (i = 1; i < NF; i++) if ($i == "|") print $(i + 1)}' |
	tr '|' '\n' | sort -u)
for c in $cmds; do
	# An entry of COMMANDS names it first, or as a second form after "| ".
	grep -Eq -- "^ +(.*\| )?$c( |$)" <<<"$text" || fail "command '$c' is not in $MAN"
	n=$((n + 1))
done
# Options: every --option the help names.
for o in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
	grep -q -- "$o" <<<"$text" || fail "option '$o' is not in $MAN"
	n=$((n + 1))
done
echo "ok: $n commands and options of vsmctl help are in the man page"

# The help forms a virsh or qemu-img user tries.
"$VSMCTL" help attach | grep -q '^  attach CONTAINER' || fail "help attach"
"$VSMCTL" attach --help | grep -q '^  attach CONTAINER' || fail "attach --help"
"$VSMCTL" --help | grep -q '^usage: vsmctl' || fail "--help"
"$VSMCTL" --version | grep -Eq '^vsmctl [0-9.]+ \(libvsm [0-9]+\.[0-9]+\.[0-9]+\)$' || fail "--version"
if "$VSMCTL" help no-such-command 2>/dev/null; then fail "help of an unknown command exits 0"; fi
echo "ok: help COMMAND, COMMAND --help, --help, --version"
