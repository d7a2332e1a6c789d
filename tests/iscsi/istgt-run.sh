#!/bin/bash
# Start a private istgt (it implements SCSI COMPARE AND WRITE, tgt does
# not) on 127.0.0.1 with a generated config in a temp dir, run the suite's
# compare-and-write cases, and stop istgt by pid; the temp dir goes too,
# in a trap, on success and failure.
#
# usage: istgt-run.sh TEST-BINARY [ARGS...]
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
for p in istgt ss; do
	command -v "$p" >/dev/null || fail "'$p' is not installed (apt-get install istgt iproute2)"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-istgt.XXXXXX")
PID=

cleanup() {
	local rc=$?
	set +e
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		for _ in $(seq 50); do
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	if [ $rc -ne 0 ] && [ -f "$T/istgt.log" ]; then
		echo "--- istgt log (last lines) ---" >&2
		tail -20 "$T/istgt.log" >&2
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT INT TERM

port_free() { [ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]; }
for _ in $(seq 100); do
	PORT=$((20000 + RANDOM % 20000))
	UPORT=$((PORT + 1))
	port_free "$PORT" && port_free "$UPORT" && break
done

for i in 0 1 2 3; do truncate -s 16M "$T/lu$i.img"; done
touch "$T/auth.conf"
cat >"$T/istgt.conf" <<EOF
[Global]
  NodeBase "iqn.2026-01.org.libvsm.test"
  PidFile $T/istgt.pid
  AuthFile $T/auth.conf
  MediaDirectory $T
  LogFacility "local7"
  Timeout 30
  NopInInterval 20
  DiscoveryAuthMethod None
  MaxSessions 16
  MaxConnections 4
  FirstBurstLength 262144
  MaxBurstLength 1048576
  MaxRecvDataSegmentLength 262144
  InitialR2T Yes
  ImmediateData Yes
[UnitControl]
  AuthMethod None
  Portal UC1 127.0.0.1:$UPORT
  Netmask 127.0.0.1
[PortalGroup1]
  Portal DA1 127.0.0.1:$PORT
[InitiatorGroup1]
  InitiatorName "ALL"
  Netmask 127.0.0.1
[LogicalUnit1]
  TargetName caw
  Mapping PortalGroup1 InitiatorGroup1
  AuthMethod None
  UseDigest Auto
  UnitType Disk
  QueueDepth 32
  LUN0 Storage $T/lu0.img 16MB
  LUN1 Storage $T/lu1.img 16MB
  LUN2 Storage $T/lu2.img 16MB
  LUN3 Storage $T/lu3.img 16MB
EOF
istgt -c "$T/istgt.conf" -D >"$T/istgt.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
	[ -n "$(ss -Hltn "( sport = :$PORT )" 2>/dev/null)" ] && break
	kill -0 "$PID" 2>/dev/null || fail "istgt exited: $(cat "$T/istgt.log")"
	sleep 0.05
done
[ -n "$(ss -Hltn "( sport = :$PORT )")" ] || fail "istgt does not listen on $PORT"

export VSM_TEST_ISTGT_PORT=$PORT VSM_TEST_TGT_DIR=$T VSM_TEST_IQN=iqn.2026-01.org.libvsm.test
"$@"
