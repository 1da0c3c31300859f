#!/usr/bin/env bash
# `make test`: every tier in turn, each tier's full output kept in $TEST_LOGS; on the terminal one line
# per tier, the output of what failed, and one line of totals at the end.
#   scripts/test.sh [TIER...]      tiers: unit integration e2e fuzz demo (default: all, in that order)
# Needs SMTPGATE_BIN, HELPER_BIN and PYTHON from the Makefile.
set -uo pipefail
cd "$(dirname "$0")/.."

TEST_LOGS=${TEST_LOGS:-$PWD/.build/test-logs}
FUZZ_SECONDS=${FUZZ_SECONDS:-5}
mkdir -p "$TEST_LOGS"
tiers=("$@")
[ ${#tiers[@]} -gt 0 ] || tiers=(unit integration e2e fuzz demo)

total_pass=0 total_fail=0 summary=()

num() { grep -oE "[0-9]+ $1" <<< "$2" | tail -1 | grep -oE '^[0-9]+' || echo 0; }

run_tier() {      # run_tier NAME COMMAND...: runs it into $TEST_LOGS/NAME.log, sets $rc and $secs
    local name=$1 start; shift
    start=$(date +%s)
    "$@" > "$TEST_LOGS/$name.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
}

report() {        # report NAME PASS FAIL: the tier's line, and its failures when there are any
    local name=$1
    pass=$2 fail=$3
    # a tier that failed without naming a failed test (it did not build, say) still counts as one failure
    if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
    total_pass=$((total_pass + pass)); total_fail=$((total_fail + fail))
    summary+=("$name $pass/$((pass + fail))")
    printf '%-12s %5d passed, %d failed  (%d s)\n' "$name" "$pass" "$fail" "$secs"
}

show() {          # the part of a failed tier's log a person needs, indented
    sed 's/^/    | /'
}

run_tier build swift build
if [ "$rc" != 0 ]; then
    grep -E 'error:' -A3 "$TEST_LOGS/build.log" | head -100 | show
    echo "make test: the build failed; full output in $TEST_LOGS/build.log"
    exit 1
fi
echo "build        done  ($secs s)"

for tier in "${tiers[@]}"; do
    case $tier in
    unit)
        run_tier unit swift test
        out=$(cat "$TEST_LOGS/unit.log")
        line=$(grep -E 'Test run with [0-9]+ tests' <<< "$out" | tail -1)
        all=$(grep -oE 'with [0-9]+ tests' <<< "$line" | grep -oE '[0-9]+' || echo 0)
        failed_tests=$(grep -cE '^✘ Test [^ ]+ failed' <<< "$out")
        report unit $((all - failed_tests)) "$failed_tests"
        if [ "$rc" != 0 ]; then
            if grep -q '^✘' <<< "$out"; then grep -E '^✘|error:|Fatal error' <<< "$out" | head -200 | show
            else tail -40 <<< "$out" | show; fi
        fi;;
    integration)
        run_tier integration "$PYTHON" -m pytest -q -p no:cacheprovider -rfE Tests/integration
        out=$(tail -3 "$TEST_LOGS/integration.log")
        report integration "$(num passed "$out")" $(( $(num failed "$out") + $(num error "$out") ))
        if [ "$rc" != 0 ]; then
            sed -n '/^=* \(FAILURES\|ERRORS\) =*$/,$p' "$TEST_LOGS/integration.log" | head -400 | show
            grep -q -E '^=* (FAILURES|ERRORS) =*$' "$TEST_LOGS/integration.log" || tail -40 "$TEST_LOGS/integration.log" | show
        fi;;
    e2e)
        run_tier e2e Tests/e2e/run.sh -v
        out=$(tail -1 "$TEST_LOGS/e2e.log")
        report e2e "$(num passed "$out")" "$(num failed "$out")"
        if [ "$rc" != 0 ]; then
            awk '/^FAIL /{p=1; print; next} /^(PASS|SKIP) /{p=0} p && /^    \| /{print}' "$TEST_LOGS/e2e.log" | tail -300 | show
            grep -q '^FAIL ' "$TEST_LOGS/e2e.log" || tail -20 "$TEST_LOGS/e2e.log" | show
        fi;;
    fuzz)
        run_tier fuzz fuzz/run.sh "$FUZZ_SECONDS"
        report fuzz "$(grep -c ': .* OK$' "$TEST_LOGS/fuzz.log")" "$(grep -c 'FAIL' "$TEST_LOGS/fuzz.log")"
        if [ "$rc" != 0 ]; then
            grep -A 30 'FAIL' "$TEST_LOGS/fuzz.log" | head -200 | show
            grep -q 'FAIL' "$TEST_LOGS/fuzz.log" || tail -40 "$TEST_LOGS/fuzz.log" | show
        fi;;
    demo)
        # README's first command, as a new user runs it: it must finish and show the proxy's log lines.
        run_tier demo demo/demo.sh
        if [ "$rc" = 0 ] && ! grep -q 'transaction' "$TEST_LOGS/demo.log"; then
            echo "demo: finished without showing a transaction log line" >> "$TEST_LOGS/demo.log"; rc=1
        fi
        if [ "$rc" = 0 ]; then report demo 1 0; else report demo 0 1; tail -60 "$TEST_LOGS/demo.log" | show; fi;;
    *)
        echo "test.sh: unknown tier '$tier'" >&2; exit 2;;
    esac
done

echo "make test: $total_pass passed, $total_fail failed (${summary[*]}); full output in $TEST_LOGS"
[ "$total_fail" = 0 ]
