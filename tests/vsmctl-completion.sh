#!/bin/bash
# vsmctl's bash completion (tools/vsmctl/vsmctl.bash-completion), driven
# as bash drives it: COMP_WORDS/COMP_CWORD set, the function called, the
# candidates read from COMPREPLY. Names come from a state directory made
# here, in a temp dir removed on exit.
# usage: vsmctl-completion.sh VSMCTL COMPLETION-SCRIPT
set -euo pipefail
VSMCTL=$1
SCRIPT=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir -p "$T/bin" "$T/ds"
ln -s "$VSMCTL" "$T/bin/vsmctl"
export PATH="$T/bin:$PATH" VSM_STATE_DIR="$T/default-state"
# shellcheck source=/dev/null
. "$SCRIPT"
complete -p vsmctl | grep -q -- '-F _vsmctl' || fail "no completion registered for vsmctl"

S=$T/state
vsmctl --state "$S" datastore add ds1 "file://$T/ds" >/dev/null
vsmctl --state "$S" host add h1 >/dev/null
vsmctl --state "$S" host link h1 ds1 >/dev/null
vsmctl --state "$S" container create web --datastore ds1 --disk root:8M >/dev/null
vsmctl --state "$S" container create db --datastore ds1 --disk root:8M >/dev/null

n=0
# complete WORDS... : the candidates for the last word (may be "").
complete_line() {
	COMP_WORDS=(vsmctl "$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_vsmctl
	printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect() { # "WANTED CANDIDATES" -- WORDS...
	local want=$1 got
	shift 2
	got=$(complete_line "$@" | tr '\n' ' ' | sed 's/ $//')
	[ "$got" = "$want" ] || fail "vsmctl $*<TAB>: got '$got', want '$want'"
	n=$((n + 1))
}
has() { # CANDIDATE -- WORDS...
	local want=$1
	shift 2
	complete_line "$@" | grep -qx -- "$want" || fail "vsmctl $*<TAB> does not offer '$want'"
	n=$((n + 1))
}

has datastore -- da
has migrate -- ""
has handover -- ""
expect "add check list remove show" -- datastore ""
expect "web" -- --state "$S" attach w
expect "db web" -- attach --json --state "$S" ""
expect "h1" -- --state "$S" attach web h
expect "--takeover" -- attach web h1 --ta
has --json -- attach --
has --live -- migrate web --l
expect "abort sync" -- migrate web --on-no-converge ""
expect "ds1" -- --state "$S" migrate web --datastore d
expect "qcow2 raw" -- image convert a b --format ""
expect "create delete list revert" -- checkpoint ""
expect "db web" -- --state "$S" checkpoint create ""
expect "ds1" -- --state "$S" datastore show ""
expect "ds1" -- --state "$S" lease status ""
has --version -- --ver
echo "ok: $n completions"
