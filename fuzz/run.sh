#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/Package.swift and runs each on a scratch copy of its seed corpus
# (fuzz/corpus/TARGET), so a run never changes what is committed.
#
#   fuzz/run.sh SECONDS [TARGET...]    each target for SECONDS (libFuzzer -max_total_time)
#   fuzz/run.sh --runs N [TARGET...]   each target for N executions (libFuzzer -runs)
#
# One line per target: "fuzz TARGET: N execs, N/s, cov N, ft N, corpus N, OK", or FAIL with the input that
# failed (kept) and what the target said. Exits non-zero if the build or any target failed.
# FUZZ_WORK=DIR puts the scratch corpora and logs in DIR and keeps them (default: a temp dir, removed
# unless something failed). FUZZ_ARGS adds libFuzzer options (e.g. FUZZ_ARGS=-jobs=2).
set -euo pipefail

fuzz=$(cd "$(dirname "$0")" && pwd)
all=(session-client session-server reply-reader data-end dot-unstuff helper-packets clamd-reply spamd-reply config-parser)

usage() { echo "usage: $0 SECONDS [TARGET...] | $0 --runs N [TARGET...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
if [ "$1" = --runs ]; then
    [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || usage
    limit=(-runs="$2")
    shift 2
else
    [[ $1 =~ ^[0-9]+$ ]] || usage
    limit=(-max_total_time="$1")
    shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    [ -d "$fuzz/Sources/$t" ] || { echo "fuzz: no target '$t' (targets: ${all[*]})" >&2; exit 2; }
done

# Longest input per target: room for the largest bound each one tests (a 16 KiB reply line, clamd's 4 KiB
# and spamd's 8 KiB answers, an 8 KiB config line) and no more, so executions stay fast.
max_len() {
    case $1 in
        reply-reader) echo 20000 ;;
        clamd-reply) echo 5000 ;;
        spamd-reply) echo 9000 ;;
        config-parser) echo 10000 ;;
        helper-packets) echo 512 ;;
        *) echo 4096 ;;
    esac
}

if [ -n "${FUZZ_WORK:-}" ]; then
    work=$FUZZ_WORK
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/smtpgate-fuzz.XXXXXX")
fi
failed=0
cleanup() { [ -n "${FUZZ_WORK:-}" ] || [ $failed -ne 0 ] || rm -rf "$work"; }
trap cleanup EXIT

# -sanitize=fuzzer,address through -Xswiftc reaches every Swift module, SMTPGateCore included, so the code
# under test gets coverage instrumentation and ASan, not only the targets.
if ! swift build -c release --package-path "$fuzz" -Xswiftc -sanitize=fuzzer,address >"$work/build.log" 2>&1; then
    failed=1
    echo "fuzz: build failed (log: $work/build.log)" >&2
    tail -30 "$work/build.log" >&2
    exit 1
fi
bin=$(swift build -c release --package-path "$fuzz" --show-bin-path)

for t in "${targets[@]}"; do
    dir="$work/$t"
    rm -rf "$dir"
    mkdir -p "$dir/corpus"
    cp "$fuzz/corpus/$t/"* "$dir/corpus/" 2>/dev/null || true
    # SWIFT_BACKTRACE off: libFuzzer reports the crash and saves the input; Swift's backtracer would stall it.
    start=$(date +%s%N)
    if SWIFT_BACKTRACE=enable=no "$bin/$t" "${limit[@]}" -max_len="$(max_len "$t")" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$dir/" ${FUZZ_ARGS:-} "$dir/corpus" >"$dir/log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
        # From the wall clock: libFuzzer's own average counts whole seconds only.
        rate=$(( ${execs:-0} * 1000000000 / ($(date +%s%N) - start + 1) ))
        last=$(grep -E '^#[0-9]+' "$dir/log" | tail -1)
        cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
        ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
        corpus=$(find "$dir/corpus" -type f | wc -l)
        echo "fuzz $t: ${execs:-?} execs, $rate/s, cov ${cov:-?}, ft ${ft:-?}, corpus $corpus, OK"
    else
        failed=1
        input=$(ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null | head -1 || true)
        echo "fuzz $t: FAIL, input ${input:-none} (log $dir/log)"
        # What the target said (the failed check, the sanitizer's summary), without libFuzzer's progress lines
        # or stack traces; the log has them.
        grep -v -E '^(#[0-9]+|INFO:|MS:|base unit:|NOTE:|stat::|0x|\s*$)|^\s+(#[0-9]+ |Combine libFuzzer|NEW_FUNC)' "$dir/log" \
            | head -20 | sed 's/^/    /'
    fi
done
exit $failed
