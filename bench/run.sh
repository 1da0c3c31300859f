#!/usr/bin/env bash
# SMTPGate benchmark (`make bench`, after `swift build -c release`).
#
# Starts, on 127.0.0.1 only and on ports picked free at run time:
#   smtp-sink  (Postfix test server, the final destination)
#   haproxy    (mode tcp, the reference relay)
#   smtpgate   (the release binary, mode fixed -> smtp-sink)
# then runs bench/bench.py, which times smtp-source workloads direct / via
# haproxy / via smtpgate (interleaved, REPEAT times, median), holds IDLE_SESSIONS
# idle sessions through smtpgate to sample its RSS, and prints a results table.
#
# Exit status: 0 when every tool run worked, whatever the performance targets
# say (they are reported as met / NOT MET); non-zero when something failed
# (missing tool, a process that did not start, smtp-source errors, the sink not
# receiving every message, ...).  Everything started here is killed on exit.
#
# Environment:
#   SMTPGATE_BIN    smtpgate binary        (default: <repo>/.build/release/smtpgate)
#   REPEAT          runs per measurement   (default: 3; median reported)
#   IDLE_SESSIONS   idle sessions held for the memory sample (default: 5000; 0 skips it)
#   NBTHREAD        haproxy threads        (default: nproc, like SwiftNIO's default group)
#   RUN_TIMEOUT     bound on one smtp-source run, seconds (default: 300)
#   BENCH_TIMEOUT   bound on the whole measurement phase, seconds (default: 1800)
#   BENCH_KEEP=1    keep the work directory (configs, logs) even on success
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
SMTPGATE_BIN="${SMTPGATE_BIN:-$REPO_DIR/.build/release/smtpgate}"
REPEAT="${REPEAT:-3}"
IDLE_SESSIONS="${IDLE_SESSIONS:-5000}"
NBTHREAD="${NBTHREAD:-$(nproc 2>/dev/null || echo 2)}"
RUN_TIMEOUT="${RUN_TIMEOUT:-300}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-1800}"
BENCH_KEEP="${BENCH_KEEP:-0}"
PYTHON="${PYTHON:-python3}"

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

for v in REPEAT IDLE_SESSIONS NBTHREAD RUN_TIMEOUT BENCH_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
(( REPEAT >= 1 && REPEAT <= 50 )) || die "REPEAT must be between 1 and 50"
(( NBTHREAD >= 1 )) || die "NBTHREAD must be >= 1"

# ---------------------------------------------------------------- tools
missing=()
for tool in smtp-sink smtp-source haproxy "$PYTHON" timeout; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if (( ${#missing[@]} )); then
    die "missing tool(s): ${missing[*]} -- install with: apt-get install -y postfix haproxy python3 coreutils
       (smtp-sink and smtp-source ship in Debian's postfix package, in /usr/sbin)"
fi
[[ -x "$SMTPGATE_BIN" ]] || die "smtpgate binary not found at $SMTPGATE_BIN -- run 'swift build -c release' (or set SMTPGATE_BIN)"

# ---------------------------------------------------------------- limits
# 5,000 proxied sessions = 10,000 descriptors in the proxy; ask for 65536 and
# settle for the hard limit when the environment (e.g. a container) caps it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE="$(ulimit -n)"
[[ "$NOFILE" == unlimited ]] && NOFILE=1048576
if (( IDLE_SESSIONS > 0 && NOFILE < 2 * IDLE_SESSIONS + 256 )); then
    die "open-file limit is $NOFILE; $IDLE_SESSIONS idle sessions need at least $(( 2 * IDLE_SESSIONS + 256 )) (raise the hard limit or lower IDLE_SESSIONS)"
fi
HAPROXY_MAXCONN=$(( (NOFILE - 256) / 2 ))
(( HAPROXY_MAXCONN > 50000 )) && HAPROXY_MAXCONN=50000
SINK_MAXCONN=$(( NOFILE - 256 ))
(( SINK_MAXCONN > 20000 )) && SINK_MAXCONN=20000

# ---------------------------------------------------------------- cleanup
WORK="$(mktemp -d "${TMPDIR:-/tmp}/smtpgate-bench.XXXXXX")"
PIDS=()          # long-running servers, in start order
DRIVER_PID=""
STATUS_OK=0

stop_pid() {     # stop_pid PID NAME: SIGTERM, bounded wait, then SIGKILL
    local pid="$1" name="$2" i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < 100; i++ )); do          # up to 10 s (smtpgate drains on SIGTERM)
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM HUP
    set +e
    [[ -n "$DRIVER_PID" ]] && stop_pid "$DRIVER_PID" "bench driver"
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
        stop_pid "${PIDS[i]%%:*}" "${PIDS[i]#*:}"
    done
    if (( rc != 0 || STATUS_OK == 0 )) || [[ "$BENCH_KEEP" == 1 ]]; then
        say "work directory kept: $WORK"
        if (( rc != 0 )); then
            for f in "$WORK"/*.err "$WORK"/smtpgate.log; do
                [[ -s "$f" ]] || continue
                say "--- last lines of $f"
                tail -n 15 "$f" >&2
            done
        fi
    else
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

start() {        # start NAME OUTFILE ERRFILE CMD...; sets LAST_PID
    local name="$1" out="$2" err="$3"; shift 3
    "$@" >"$out" 2>"$err" </dev/null &
    LAST_PID=$!
    PIDS+=("$LAST_PID:$name")
}

wait_listen() {  # wait_listen NAME PORT PID
    "$PYTHON" "$BENCH_DIR/util.py" wait-listen "$2" "$3" 15 \
        || die "$1 did not start listening on 127.0.0.1:$2 (see $WORK)"
}

read -r SINK_PORT HAPROXY_PORT GATE_PORT < <("$PYTHON" "$BENCH_DIR/util.py" free-ports 3)
[[ -n "$GATE_PORT" ]] || die "could not pick free ports"
say "work dir $WORK; ports: sink $SINK_PORT, haproxy $HAPROXY_PORT, smtpgate $GATE_PORT; nofile $NOFILE"

# ---------------------------------------------------------------- smtp-sink
# -c : running counters "sess=N quit=N mesg=N" on stdout (used to verify delivery)
# -m : concurrent-session cap (default 256 -- far too low for the idle test; excess
#      connections would sit unanswered in the listen queue)
# -t : command/response timeout (default 100 s)
# -u : required when started as root (drops privileges after binding)
# last argument = listen backlog (the kernel caps it at net.core.somaxconn)
SINK_FLAGS=(-c -m "$SINK_MAXCONN" -t 300)
[[ "$(id -u)" == 0 ]] && SINK_FLAGS=(-u nobody "${SINK_FLAGS[@]}")
start smtp-sink "$WORK/sink.out" "$WORK/sink.err" \
    smtp-sink "${SINK_FLAGS[@]}" "127.0.0.1:$SINK_PORT" 5000
SINK_PID=$LAST_PID
wait_listen smtp-sink "$SINK_PORT" "$SINK_PID"

# ---------------------------------------------------------------- haproxy
cat >"$WORK/haproxy.cfg" <<EOF
# generated by bench/run.sh -- plain TCP relay, no logging
global
    maxconn $HAPROXY_MAXCONN
    nbthread $NBTHREAD
defaults
    mode tcp
    option dontlognull
    timeout connect 10s
    timeout client 600s
    timeout server 600s
frontend smtp_in
    bind 127.0.0.1:$HAPROXY_PORT
    maxconn $HAPROXY_MAXCONN
    default_backend smtp_sink
backend smtp_sink
    server sink 127.0.0.1:$SINK_PORT
EOF
haproxy -c -q -f "$WORK/haproxy.cfg" >"$WORK/haproxy-check.err" 2>&1 \
    || { cat "$WORK/haproxy-check.err" >&2; die "haproxy rejected the generated config"; }
start haproxy "$WORK/haproxy.out" "$WORK/haproxy.err" haproxy -db -f "$WORK/haproxy.cfg"
HAPROXY_PID=$LAST_PID
wait_listen haproxy "$HAPROXY_PORT" "$HAPROXY_PID"

# ---------------------------------------------------------------- smtpgate
cat >"$WORK/smtpgate.conf" <<EOF
# generated by bench/run.sh -- a realistic fixed-destination deployment
proxy_name bench.smtpgate.test
bind_address 127.0.0.1
port $GATE_PORT
mode fixed
fixed_server 127.0.0.1
fixed_server_port $SINK_PORT
# listen backlog: the smtp-gated default (16) is far below what a busy gateway
# uses; haproxy's backlog defaults to its maxconn, the sink's is 5000 (both
# capped by net.core.somaxconn), so give smtpgate the same room.
connect_queue 4096
max_connections 20000
max_per_host 0
pipeline_size 64
timeout_connect 10
timeout_idle 300
forbid_starttls no
# full transaction logging (helo, sender, every recipient) to --log-file
log_helo yes
log_mail_from 3
log_rcpt_to 3
shutdown_timeout 5
EOF
GATE_VERSION="$("$SMTPGATE_BIN" version 2>&1 | head -n 1 || true)"
"$SMTPGATE_BIN" check-config "$WORK/smtpgate.conf" >"$WORK/smtpgate-check.out" 2>"$WORK/smtpgate-check.err" \
    || { cat "$WORK/smtpgate-check.err" >&2; die "smtpgate check-config rejected the generated config"; }
start smtpgate "$WORK/smtpgate.out" "$WORK/smtpgate.err" \
    "$SMTPGATE_BIN" run --config "$WORK/smtpgate.conf" --log-file "$WORK/smtpgate.log"
GATE_PID=$LAST_PID
wait_listen smtpgate "$GATE_PORT" "$GATE_PID"

# ---------------------------------------------------------------- measure
say "running: REPEAT=$REPEAT, IDLE_SESSIONS=$IDLE_SESSIONS, haproxy nbthread=$NBTHREAD"
driver=(timeout --signal=TERM --kill-after=15 "$BENCH_TIMEOUT"
    "$PYTHON" "$BENCH_DIR/bench.py"
    --target "direct:$SINK_PORT:"
    --target "haproxy:$HAPROXY_PORT:$HAPROXY_PID"
    --target "smtpgate:$GATE_PORT:$GATE_PID"
    --sink-out "$WORK/sink.out" --sink-pid "$SINK_PID"
    --sink-flags "${SINK_FLAGS[*]}"
    --repeat "$REPEAT" --run-timeout "$RUN_TIMEOUT"
    --idle "$IDLE_SESSIONS" --idle-timeout 120
    --gate-log "$WORK/smtpgate.log" --gate-version "${GATE_VERSION:-?}"
    --haproxy-threads "$NBTHREAD" --haproxy-maxconn "$HAPROXY_MAXCONN")
(( IDLE_SESSIONS == 0 )) && driver+=(--no-idle)
"${driver[@]}" &
DRIVER_PID=$!
set +e
wait "$DRIVER_PID"
rc=$?
set -e
DRIVER_PID=""
(( rc == 124 )) && say "measurement phase exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
(( rc == 0 )) || die "benchmark run had failures (driver exit $rc)"
STATUS_OK=1
