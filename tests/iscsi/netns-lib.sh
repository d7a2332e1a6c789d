# Shared by the scripts that run hosts in network namespaces: two hosts
# (A: 192.0.2.1, B: 192.0.2.5) and a target namespace (192.0.2.2 as A sees
# it, 192.0.2.6 as B does) joined by veth pairs, with a private tgtd in the
# target's. Source it, set TAG and T, call netns_up, then tgt_up; call
# netns_down from the EXIT trap.

NS_T=$TAG-t NS_A=$TAG-a NS_B=$TAG-b
TGTD_PID= CPORT=

netns_up() {
	ip netns add "$NS_T"
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	ip link add "$TAG-a0" netns "$NS_A" type veth peer name "$TAG-ta" netns "$NS_T"
	ip link add "$TAG-b0" netns "$NS_B" type veth peer name "$TAG-tb" netns "$NS_T"
	ip -n "$NS_A" addr add 192.0.2.1/30 dev "$TAG-a0"
	ip -n "$NS_T" addr add 192.0.2.2/30 dev "$TAG-ta"
	ip -n "$NS_B" addr add 192.0.2.5/30 dev "$TAG-b0"
	ip -n "$NS_T" addr add 192.0.2.6/30 dev "$TAG-tb"
	for ns in "$NS_A" "$NS_B" "$NS_T"; do ip -n "$ns" link set lo up; done
	ip -n "$NS_A" link set "$TAG-a0" up
	ip -n "$NS_B" link set "$TAG-b0" up
	ip -n "$NS_T" link set "$TAG-ta" up
	ip -n "$NS_T" link set "$TAG-tb" up
}

# tgtd in the target namespace; TA runs tgtadm against it.
tgt_up() {
	for _ in $(seq 100); do
		CPORT=$((1000 + RANDOM % 30000))
		[ ! -e "/var/run/tgtd/socket.$CPORT" ] && break
	done
	ip netns exec "$NS_T" tgtd -f -C "$CPORT" --iscsi portal=0.0.0.0:3260 >"$T/tgtd.log" 2>&1 &
	TGTD_PID=$!
	TA=(ip netns exec "$NS_T" tgtadm -C "$CPORT" --lld iscsi)
	for _ in $(seq 100); do "${TA[@]}" --mode target --op show >/dev/null 2>&1 && break; sleep 0.05; done
}

# Stop tgtd by its pid (targets first: it refuses to stop with them) and
# remove the namespaces.
netns_down() {
	if [ -n "$TGTD_PID" ] && kill -0 "$TGTD_PID" 2>/dev/null; then
		ip netns exec "$NS_T" tgtadm -C "$CPORT" --lld iscsi --mode target --op delete \
			--force --tid 1 >/dev/null 2>&1
		ip netns exec "$NS_T" tgtadm -C "$CPORT" --op delete --mode system >/dev/null 2>&1
		for _ in $(seq 50); do kill -0 "$TGTD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$TGTD_PID" 2>/dev/null && echo "tgtd did not stop; killing it" >&2
		kill -KILL "$TGTD_PID" 2>/dev/null
		wait "$TGTD_PID" 2>/dev/null
	fi
	[ -n "$CPORT" ] && rm -f "/var/run/tgtd/socket.$CPORT" "/var/run/tgtd/socket.$CPORT.lock"
	for ns in "$NS_A" "$NS_B" "$NS_T"; do ip netns del "$ns" 2>/dev/null; done
}
