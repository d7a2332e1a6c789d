#!/bin/bash
# One timed libFuzzer run of a target, as the 'fuzz' suite of a
# -Dfuzz=true build runs it (doc/fuzzing.md). The corpus is copied to a
# temporary directory first, and libFuzzer's new inputs and artifacts go
# there: the source tree is never written. A crash, leak, timeout or
# out-of-memory makes libFuzzer exit non-zero, and so this script; the
# reproducer is then copied to $FUZZ_ARTIFACTS (default: the current
# directory's fuzz-artifacts/) and printed as hex.
# usage: run-fuzzer.sh FUZZER CORPUS_DIR
# FUZZ_SECONDS (default 30): how long to fuzz.
set -uo pipefail
fuzzer=$(realpath "$1")
corpus=$(realpath "$2")
seconds=${FUZZ_SECONDS:-30}
name=$(basename "$fuzzer")
T=$(mktemp -d "${TMPDIR:-/tmp}/vsm-$name.XXXXXX")
fuzz_files=
trap 'rm -rf "$T" ${fuzz_files:+"$fuzz_files"}' EXIT
mkdir -p "$T/corpus" "$T/artifacts"
cp -r "$corpus/." "$T/corpus/"
# The targets' own files (images, a datastore, a catalog) go to a tmpfs
# when there is one: the fsyncs of the bundle and qcow2 targets cost
# most of their time on a disk. FUZZ_TMPDIR overrides.
fuzz_tmp=${FUZZ_TMPDIR:-}
if [ -z "$fuzz_tmp" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	fuzz_tmp=/dev/shm
fi
# In a directory of this run's, removed at the end: a target that crashes
# does not get to remove its files.
fuzz_files=$(mktemp -d "${fuzz_tmp:-${TMPDIR:-/tmp}}/vsm-fuzz-files.XXXXXX")
export TMPDIR=$fuzz_files
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -timeout: one input may take this long; -rss_limit_mb: the whole process.
(cd "$T" && "$fuzzer" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
	-artifact_prefix="$T/artifacts/" -print_final_stats=1 "$T/corpus") >"$T/log" 2>&1
rc=$?
# The log is long: keep its head (setup), and its tail (the end, or the report).
head -n 20 "$T/log"
echo "..."
tail -n 60 "$T/log"
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/log" | tail -n 1)
final=$(grep -E '^#[0-9]+' "$T/log" | tail -n 1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$final")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$final")
echo "$name: ${seconds}s, execs ${execs:-?}, cov ${cov:-?}, ft ${ft:-?}, exit $rc"
if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$T/artifacts")" ]; then
	out=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
	mkdir -p "$out"
	for a in "$T"/artifacts/*; do
		[ -e "$a" ] || continue
		cp "$a" "$out/$name-$(basename "$a")"
		echo "reproducer: $out/$name-$(basename "$a")"
		od -A d -t x1 "$a" | head -n 40
	done
	exit 1
fi
exit 0
