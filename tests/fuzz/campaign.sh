#!/bin/bash
# A long fuzzing campaign (doc/fuzzing.md). Builds nothing: give it a
# -Dfuzz=true build directory. For each target: copies its corpus to a
# work directory, runs libFuzzer for the given time (with --jobs J, J
# processes share the work directory's corpus), then minimises what the
# run added into WORK/TARGET/new (libFuzzer -merge=1 against the checked-in
# corpus) for review, and prints execs, coverage (cov/ft of the final
# stats line) and the crashes found (WORK/TARGET/artifacts).
# usage: campaign.sh [--build DIR] [--hours H] [--jobs J] [--work DIR] TARGET...
#   TARGET: qcow2 record bundle lease uri (or all)
#   --build build-fuzz, --hours 1, --jobs 1, --work ./fuzz-campaign-DATE
# Nothing is written into the source tree; copy reviewed files from
# WORK/TARGET/new (or a minimised crash) into tests/fuzz/corpus/TARGET.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=build-fuzz
hours=1
jobs=1
work=fuzz-campaign-$(date -u +%Y%m%dT%H%M%S)
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--hours) hours=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	--work) work=$2; shift 2 ;;
	all) targets+=(qcow2 record bundle lease uri); shift ;;
	-*) echo "campaign: unknown option $1" >&2; exit 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
seconds=$(python3 -c "print(int(float('$hours') * 3600))")
mkdir -p "$work"
work=$(cd "$work" && pwd)
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
summary=()
trap 'rm -rf "$fuzz_files"' EXIT
for t in "${targets[@]}"; do
	fz=$(realpath "$build/tests/fuzz/fuzz-$t" 2>/dev/null)
	seeds=$here/corpus/$t
	if [ ! -x "$fz" ] || [ ! -d "$seeds" ]; then
		echo "campaign: no fuzzer $build/tests/fuzz/fuzz-$t or corpus $seeds" >&2
		exit 2
	fi
	d=$work/$t
	mkdir -p "$d/corpus" "$d/artifacts" "$d/new"
	cp -r "$seeds/." "$d/corpus/"
	echo "campaign: $t for ${seconds}s, $jobs job(s), in $d"
	start=$(date +%s)
	if [ "$jobs" -gt 1 ]; then
		# -jobs: J runs share the corpus; each stops after -max_total_time.
		(cd "$d" && "$fz" -jobs="$jobs" -workers="$jobs" -max_total_time="$seconds" \
			-timeout=25 -rss_limit_mb=2048 -artifact_prefix="$d/artifacts/" \
			-print_final_stats=1 "$d/corpus") >"$d/log" 2>&1
		rc=$?
		cat "$d"/fuzz-*.log >>"$d/log" 2>/dev/null
	else
		(cd "$d" && "$fz" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
			-artifact_prefix="$d/artifacts/" -print_final_stats=1 "$d/corpus") >"$d/log" 2>&1
		rc=$?
	fi
	# What the campaign added, minimised against the checked-in corpus:
	# merge into a copy of the seeds (the inputs that add coverage to
	# them are added there), then keep only the added files.
	rm -rf "$d/merged" && mkdir -p "$d/merged" && cp -r "$seeds/." "$d/merged/"
	(cd "$d" && "$fz" -merge=1 -timeout=25 -rss_limit_mb=2048 "$d/merged" "$d/corpus") \
		>"$d/merge.log" 2>&1
	for f in "$d"/merged/*; do
		[ -e "$seeds/$(basename "$f")" ] || mv "$f" "$d/new/"
	done
	rm -rf "$d/merged"
	added=$(find "$d/new" -type f | wc -l)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log" | paste -sd+ | bc 2>/dev/null)
	final=$(grep -E '^#[0-9]+' "$d/log" | grep -E 'cov: ' | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$final")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$final")
	# A slow-unit artifact is an input that took over 10 s once (often a
	# loaded machine), not a failure: counted apart.
	crashes=$(find "$d/artifacts" -type f ! -name 'slow-unit-*' | wc -l)
	slow=$(find "$d/artifacts" -type f -name 'slow-unit-*' | wc -l)
	line="$t: $(( $(date +%s) - start ))s, execs ${execs:-?}, cov ${cov:-?}, ft ${ft:-?}, crashes $crashes, slow units $slow, new corpus files $added, exit $rc"
	echo "campaign: $line"
	summary+=("$line")
	for a in "$d"/artifacts/*; do
		[ -e "$a" ] && echo "campaign:   reproducer $a"
	done
done
echo "campaign: summary ($work)"
printf '  %s\n' "${summary[@]}"
