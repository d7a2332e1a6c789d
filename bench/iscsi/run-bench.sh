#!/bin/bash
# Start a private tgtd on 127.0.0.1 (free portal port, own control port),
# give it a target with a small metadata LUN and a 1 GiB data LUN, run
# bench-iscsi on it, and stop tgtd (target deleted, tgtadm --op delete
# --mode system, then by pid) and remove the temp dir, whatever happens.
#
# usage: run-bench.sh BENCH-ISCSI [SECONDS-PER-RUN [REPS]]
set -euo pipefail
BENCH=$1
SECS=${2:-2}
REPS=${3:-3}
for p in tgtd tgtadm iscsi-perf ss; do
	command -v "$p" >/dev/null || { echo "'$p' is not installed" >&2; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-bench-iscsi.XXXXXX")
PID=
CPORT=
cleanup() {
	set +e
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		tgtadm -C "$CPORT" --lld iscsi --mode target --op delete --force --tid 1 \
			>/dev/null 2>&1
		tgtadm -C "$CPORT" --op delete --mode system >/dev/null 2>&1
		for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$PID" 2>/dev/null && echo "tgtd did not stop; killing it" >&2
		kill -KILL "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	[ -n "$CPORT" ] && rm -f "/var/run/tgtd/socket.$CPORT" "/var/run/tgtd/socket.$CPORT.lock"
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
for _ in $(seq 100); do
	PORT=$((20000 + RANDOM % 20000))
	[ -z "$(ss -Htan "( sport = :$PORT )")" ] && break
done
for _ in $(seq 100); do
	CPORT=$((1000 + RANDOM % 30000))
	[ ! -e "/var/run/tgtd/socket.$CPORT" ] && break
done
tgtd -f -C "$CPORT" --iscsi "portal=127.0.0.1:$PORT" >"$T/tgtd.log" 2>&1 &
PID=$!
TA=(tgtadm -C "$CPORT" --lld iscsi)
for _ in $(seq 100); do "${TA[@]}" --mode target --op show >/dev/null 2>&1 && break; sleep 0.05; done
IQN=iqn.2026-01.org.libvsm.bench:t
"${TA[@]}" --mode target --op new --tid 1 --targetname "$IQN"
"${TA[@]}" --mode target --op bind --tid 1 --initiator-address ALL
truncate -s 16M "$T/meta.img"
# The data LUN is written in full once so that reads hit real blocks.
dd if=/dev/zero of="$T/data.img" bs=1M count=1024 status=none
"${TA[@]}" --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$T/meta.img"
"${TA[@]}" --mode logicalunit --op new --tid 1 --lun 2 --backing-store "$T/data.img"
"$BENCH" "iscsi://127.0.0.1:$PORT/$IQN?meta-lun=1" "iscsi://127.0.0.1:$PORT/$IQN/2" "$SECS" "$REPS"
