#!/bin/bash
# Host migration from the command line (doc/host-migration.md): `migrate
# CONTAINER --host HOST --json` in one state directory that acts for both
# hosts (begin, accept, complete at once); across two state directories
# (two hosts): begin only on the source, `handover accept` and `complete`
# on the target, the source fenced afterwards; `handover cancel`.
set -u
VSMCTL=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-handover-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
export VSM_LEASE_TIMEOUT_MS=600 VSM_LEASE_RENEW_MS=60
fail() { echo "FAIL: $*" >&2; exit 1; }
v() { local s=$1; shift; "$VSMCTL" --state "$T/$s" "$@"; }
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }

mkdir "$T/ds"
v s datastore add ds "file://$T/ds" --create >/dev/null || fail "datastore add"
for h in h1 h2; do
	v s host add $h >/dev/null && v s host link $h ds >/dev/null || fail "host $h"
done
v s container create web --datastore ds --disk d0:1M >/dev/null || fail "create"
v s attach web h1 >/dev/null || fail "attach"

# One state directory acts for both hosts: the whole handover at once.
out=$(v s migrate web --host h2 --json) || fail "migrate --host: $out"
[ "$(echo "$out" | field event)" = migrated ] || fail "event: $out"
[ "$(echo "$out" | field attached_host)" = h2 ] || fail "attached_host: $out"
[ "$(echo "$out" | field handover)" = none ] || fail "handover: $out"
[ "$(echo "$out" | field host)" = h2 ] || fail "host: $out"
out=$(v s --json container show web) || fail "show"
echo "$out" | grep -q '"attached_host": *"h2"' || fail "record: $out"
out=$(v s migrate web --host h2 2>&1) && fail "migrate to the same host accepted"
case $out in *"already attached to host 'h2'"*) ;; *) fail "same host: $out" ;; esac
out=$(v s migrate web 2>&1); [ $? -eq 2 ] || fail "migrate without a target: $out"

# Two state directories, two hosts: the source only begins.
v t datastore add ds "file://$T/ds" >/dev/null || fail "datastore add (t)"
v t host add h3 >/dev/null && v t host link h3 ds >/dev/null || fail "host h3"
out=$(v s migrate web --host h3 --json) || fail "begin-only migrate: $out"
[ "$(echo "$out" | field event)" = begun ] || fail "begun: $out"
[ "$(echo "$out" | field handover)" = begun ] || fail "state begun: $out"
[ "$(echo "$out" | field target)" = h3 ] || fail "target: $out"
out=$(v t handover complete web 2>&1) && fail "complete before accept"
case $out in *"not accepted yet"*) ;; *) fail "complete before accept: $out" ;; esac
out=$(v t --json handover accept web h3) || fail "accept: $out"
[ "$(echo "$out" | field handover)" = accepted ] || fail "accepted: $out"
out=$(v t --json handover complete web) || fail "complete: $out"
[ "$(echo "$out" | field attached_host)" = h3 ] || fail "completed: $out"
[ "$(echo "$out" | field handover)" = none ] || fail "after complete: $out"
# The old source is fenced.
out=$(v s deploy web d0 2>&1) && fail "the old source deployed"
case $out in *"h3"*) ;; *) fail "fenced deploy: $out" ;; esac
out=$(v t deploy web d0) || fail "deploy on the target: $out"

# Back to the first state directory, then cancelled.
v t undeploy web d0 >/dev/null || fail "undeploy"
out=$(v t migrate web --host h1 --json) || fail "begin back: $out"
[ "$(echo "$out" | field event)" = begun ] || fail "begun back: $out"
out=$(v t --json handover cancel web) || fail "cancel: $out"
[ "$(echo "$out" | field handover)" = none ] || fail "cancelled: $out"
out=$(v s handover accept web h1 2>&1) && fail "accept after cancel"
case $out in *"not being handed over"*) ;; *) fail "accept after cancel: $out" ;; esac
out=$(v t --json handover status web) || fail "status"
[ "$(echo "$out" | field attached_host)" = h3 ] || fail "status: $out"
out=$(v t handover bogus web 2>&1); [ $? -eq 2 ] || fail "bad step: $out"
echo "vsmctl handover: ok"
