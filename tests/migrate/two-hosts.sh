#!/bin/bash
# Migration is shared metadata: two processes with their own state
# directories (two hosts) migrate their containers between the same two
# datastores at once, while each also creates and destroys containers
# there, and nothing may be lost. At the end a third, fresh state
# directory rescans both datastores and counts: every container once, on
# one datastore, reading the data it was given; no orphan device on
# either datastore. The temp dir is removed on exit.
# usage: two-hosts.sh VSMCTL
set -euo pipefail
VSMCTL=$1
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ROUNDS=${VSM_TEST_ROUNDS:-3}
PER_HOST=3
mkdir -p "$T/ds1" "$T/ds2"

for h in a b; do
	V="$VSMCTL --state $T/state-$h"
	$V datastore add ds1 "file://$T/ds1" >/dev/null
	$V datastore add ds2 "file://$T/ds2" >/dev/null
done

# Each host's containers, with data of their own (raw and qcow2 devices).
for h in a b; do
	V="$VSMCTL --state $T/state-$h"
	for i in $(seq $PER_HOST); do
		$V container create "$h$i" --datastore ds1 --disk r:4M --disk q:4M:qcow2 --thin >/dev/null
		head -c 131072 /dev/urandom >"$T/$h$i.data"
		$V image write "ds1/$h$i:r" 0 <"$T/$h$i.data" >/dev/null
		$V image write "ds1/$h$i:q" 1048576 <"$T/$h$i.data" >/dev/null
	done
done

# host H: ROUNDS times, every container of its own to the other datastore,
# and a scratch container made and destroyed on each datastore.
work() {
	local h=$1 V="$VSMCTL --state $T/state-$1" r i to
	for r in $(seq "$ROUNDS"); do
		[ $((r % 2)) -eq 1 ] && to=ds2 || to=ds1
		for i in $(seq $PER_HOST); do
			$V migrate "$h$i" --datastore "$to" >/dev/null ||
				{ echo "host $h: migrate $h$i to $to failed" >&2; return 1; }
		done
		$V container create "tmp-$h-$r" --datastore "$to" --disk x:1M >/dev/null ||
			{ echo "host $h: create tmp-$h-$r failed" >&2; return 1; }
		$V container destroy "tmp-$h-$r" >/dev/null ||
			{ echo "host $h: destroy tmp-$h-$r failed" >&2; return 1; }
	done
}
work a >"$T/a.log" 2>&1 &
pa=$!
work b >"$T/b.log" 2>&1 &
pb=$!
ok=0
wait $pa || { ok=1; echo "host a: $(cat "$T/a.log")" >&2; }
wait $pb || { ok=1; echo "host b: $(cat "$T/b.log")" >&2; }
[ $ok -eq 0 ] || fail "a host's migration failed"

# The count, from a state directory that has seen nothing of it.
V="$VSMCTL --state $T/state-c"
$V datastore add ds1 "file://$T/ds1" >/dev/null
$V datastore add ds2 "file://$T/ds2" >/dev/null
$V container list >"$T/list"
lost=0
for h in a b; do
	for i in $(seq $PER_HOST); do
		n=$(awk -v c="$h$i" '$1 == c' "$T/list" | wc -l)
		if [ "$n" -ne 1 ]; then
			echo "container $h$i listed $n times" >&2
			lost=$((lost + 1))
			continue
		fi
		ds=$(awk -v c="$h$i" '$1 == c { print $2 }' "$T/list")
		$V image read "$ds/$h$i:r" 0 131072 >"$T/got.r"
		$V image read "$ds/$h$i:q" 1048576 131072 >"$T/got.q"
		if ! cmp -s "$T/got.r" "$T/$h$i.data" || ! cmp -s "$T/got.q" "$T/$h$i.data"; then
			echo "container $h$i on $ds lost its data" >&2
			lost=$((lost + 1))
		fi
	done
done
if grep -q '^tmp-' "$T/list"; then
	echo "scratch containers left: $(grep '^tmp-' "$T/list")" >&2
	lost=$((lost + 1))
fi
for ds in ds1 ds2; do
	$V datastore check "$ds" --grace 0 >"$T/check.$ds" || { echo "orphans on $ds: $(cat "$T/check.$ds")" >&2; lost=$((lost + 1)); }
done
echo "two hosts, $ROUNDS rounds of $PER_HOST migrations each: $((2 * ROUNDS * PER_HOST)) migrations, lost $lost"
[ "$lost" -eq 0 ] || fail "$lost containers lost, doubled, damaged or orphaned"
