#!/bin/bash
# Start a private tgtd on 127.0.0.1 (a free portal port, its own control
# port so a system tgtd is never touched), give it the targets the iSCSI
# suite expects, run the suite, and stop tgtd again: its targets deleted,
# then `tgtadm --op delete --mode system` (tgtd ignores SIGTERM and refuses
# that while it has targets), then by pid if it is still there.
# The temp dir goes too. All of it in a trap, on success and failure.
#
# usage: tgt-run.sh TEST-BINARY [ARGS...]
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
for p in tgtd tgtadm ss; do
	command -v "$p" >/dev/null || fail "'$p' is not installed (apt-get install tgt iproute2)"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-iscsi.XXXXXX")
TGTD_PID=
CPORT=

cleanup() {
	local rc=$?
	set +e
	if [ -n "$TGTD_PID" ] && kill -0 "$TGTD_PID" 2>/dev/null; then
		# tgtd refuses to stop while it has targets: delete them first.
		for tid in $(tgtadm -C "$CPORT" --lld iscsi --mode target --op show 2>/dev/null |
			     sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
			tgtadm -C "$CPORT" --lld iscsi --mode target --op delete --force \
				--tid "$tid" >/dev/null 2>&1
		done
		tgtadm -C "$CPORT" --op delete --mode system >/dev/null 2>&1
		for _ in $(seq 50); do
			kill -0 "$TGTD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$TGTD_PID" 2>/dev/null && echo "tgtd did not stop; killing it" >&2
		kill -KILL "$TGTD_PID" 2>/dev/null
		wait "$TGTD_PID" 2>/dev/null
	fi
	[ -n "$CPORT" ] && rm -f "/var/run/tgtd/socket.$CPORT" "/var/run/tgtd/socket.$CPORT.lock"
	if [ $rc -ne 0 ] && [ -f "$T/tgtd.log" ]; then
		echo "--- tgtd log (last lines) ---" >&2
		tail -20 "$T/tgtd.log" >&2
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT INT TERM

port_free() { [ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]; }

# A portal port nobody listens on, and a control port with no socket.
for _ in $(seq 100); do
	PORT=$((20000 + RANDOM % 20000))
	port_free "$PORT" && break
done
for _ in $(seq 100); do
	CPORT=$((1000 + RANDOM % 30000))
	[ ! -e "/var/run/tgtd/socket.$CPORT" ] && [ ! -e "/var/run/tgtd/socket.$CPORT.lock" ] && break
done

tgtd -f -C "$CPORT" --iscsi "portal=127.0.0.1:$PORT" >"$T/tgtd.log" 2>&1 &
TGTD_PID=$!
TA=(tgtadm -C "$CPORT" --lld iscsi)
for _ in $(seq 100); do
	"${TA[@]}" --mode target --op show >/dev/null 2>&1 && break
	kill -0 "$TGTD_PID" 2>/dev/null || fail "tgtd exited: $(cat "$T/tgtd.log")"
	sleep 0.05
done
"${TA[@]}" --mode target --op show >/dev/null || fail "tgtd does not answer on control port $CPORT"

IQN=iqn.2026-01.org.libvsm.test
# target TID NAME; then luns: LUN SIZE [BLOCKSIZE]
mk_target() {
	"${TA[@]}" --mode target --op new --tid "$1" --targetname "$IQN:$2"
	"${TA[@]}" --mode target --op bind --tid "$1" --initiator-address ALL
	mkdir -p "$T/$2"
}
mk_lun() { # TID NAME LUN SIZE [BLOCKSIZE]
	local f="$T/$2/lun$3.img"
	truncate -s "$4" "$f"
	"${TA[@]}" --mode logicalunit --op new --tid "$1" --lun "$3" --backing-store "$f" \
		${5:+--blocksize "$5"}
}

mk_target 1 pool
mk_lun 1 pool 1 64M
mk_lun 1 pool 2 64M
mk_lun 1 pool 3 8M
mk_lun 1 pool 4 8M
mk_lun 1 pool 5 8M
mk_lun 1 pool 6 32M

mk_target 2 chap
mk_lun 2 chap 1 16M
mk_lun 2 chap 2 8M
mk_lun 2 chap 3 8M
"${TA[@]}" --mode account --op new --user vsmuser --password vsm-secret-12
"${TA[@]}" --mode account --op bind --tid 2 --user vsmuser

mk_target 3 managed

mk_target 4 fourk
mk_lun 4 fourk 1 64M 4096
mk_lun 4 fourk 2 16M 4096
mk_lun 4 fourk 3 8M 4096
mk_lun 4 fourk 4 8M 4096

mk_target 5 vanish
mk_lun 5 vanish 1 16M
mk_lun 5 vanish 2 16M
mk_lun 5 vanish 3 8M

mk_target 6 damaged
mk_lun 6 damaged 1 16M
mk_lun 6 damaged 2 8M
mk_lun 6 damaged 3 8M

mk_target 7 lease
mk_lun 7 lease 1 16M
mk_lun 7 lease 2 8M
mk_lun 7 lease 3 8M

mk_target 8 orphans
mk_lun 8 orphans 1 16M
mk_lun 8 orphans 2 8M
mk_lun 8 orphans 3 8M
mk_lun 8 orphans 4 8M
mk_lun 8 orphans 5 8M

export VSM_TEST_ISCSI_PORT=$PORT VSM_TEST_TGT_CPORT=$CPORT VSM_TEST_TGT_DIR=$T \
	VSM_TEST_IQN=$IQN VSM_TEST_CLOSED_PORT
# A port nothing listens on, for the unreachable-portal case.
for _ in $(seq 100); do
	VSM_TEST_CLOSED_PORT=$((20000 + RANDOM % 20000))
	[ "$VSM_TEST_CLOSED_PORT" != "$PORT" ] && port_free "$VSM_TEST_CLOSED_PORT" && break
done
"$@"
