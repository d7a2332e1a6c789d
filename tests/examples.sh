#!/bin/bash
# The examples a tool author copies from, built and run as they are:
# hello (create, attach, deploy) and checkpoint (write, checkpoint with a
# VM-state blob, write, revert, read back) on a file datastore in a temp
# directory, removed on exit. examples/provision needs a libvirt daemon
# and a running domain: tests/libvirt/real-daemon.sh runs it.
# usage: examples.sh HELLO CHECKPOINT
set -euo pipefail
HELLO=$1
CHECKPOINT=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir "$T/ds"
"$HELLO" "$T/state" "file://$T/ds" >"$T/hello.out" || fail "hello: $(cat "$T/hello.out")"
grep -q "^file://$T/ds/" "$T/hello.out" || fail "hello printed no locator: $(cat "$T/hello.out")"
grep -q "<disk type='file' device='disk'>" "$T/hello.out" || fail "hello printed no disk XML"
echo "ok 1 hello"

mkdir "$T/ds2"
"$CHECKPOINT" "$T/state2" "file://$T/ds2" >"$T/ckpt.out" || fail "checkpoint: $(cat "$T/ckpt.out")"
grep -qx "after revert to 'clean': written before the checkpoint" "$T/ckpt.out" ||
	fail "checkpoint output: $(cat "$T/ckpt.out")"
grep -qx "VM state handed back: saved guest memory would go here.*" "$T/ckpt.out" ||
	fail "checkpoint output: $(cat "$T/ckpt.out")"
# It destroyed its container: only the datastore's own metadata is left.
left=$(find "$T/ds2" -type f ! -path "$T/ds2/.vsm/*" | wc -l)
[ "$left" -eq 0 ] || fail "checkpoint left files: $(find "$T/ds2" -type f)"
echo "ok 2 checkpoint"
