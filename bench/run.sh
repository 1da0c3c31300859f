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
# Then, as root, the NAT lab sections (bench/lab.py, bench/helper_load.py) in network
# namespaces built with Tests/e2e/lib.sh (the e2e lab's topology: client, router, proxy,
# MTA; only 10.77.0.0/16 and fd77::/48 inside namespaces created here, no default route;
# firewall rules from Examples/firewall-*.sh applied verbatim):
#   1. smtpgate-helper: lookups/s and round-trip / lookup latency with HELPER_ENTRIES
#      conntrack entries on the router (made with conntrack -R: -I lines in bulk), queries
#      from the proxy's namespace for entries chosen at random, v2 and 0x0402, W=1 and
#      W=HELPER_INFLIGHT in flight; the helper's own p50/p99 from its SIGUSR1 counters line;
#   2. the session rate through the router, smtp-source from the client's namespace to the
#      MTA's address port 25, with smtpgate on the router in mode netfilter (REDIRECT) and
#      split (smtpgate in its own namespace, mode remote-udp, helper on the router, v2 key);
#      both wall times, msg/s and the ratio split/local.
#
# Between the two, the content-scanning section (bench/scan_bench.py, issue 4), on 127.0.0.1 and
# unix sockets: a real clamd (Debian clamav-daemon, Foreground, its own one-signature EICAR
# database made here), an smtp-sink and two smtpgate instances, one with antivirus_type clamd and
# one without.  SCAN_MESSAGES distinct MIME messages of SCAN_SIZE bytes (base64 attachment) are
# delivered by SCAN_CLIENTS parallel smtplib clients through each smtpgate, and handed to clamd
# by SCAN_CLIENTS parallel `clamdscan --stream` processes (no SMTP): T_scan, T_off, T_clamdscan,
# their ratios and the proxy's own share (T_scan - T_clamdscan) / T_scan.
#
# After the loopback sections, two abuse-control sections (issue: per-client locks and rate limits):
#   * bench/abuse_bench.py: one smtp-sink and two smtpgate instances with the same configuration, one with
#     lock_on virus, lock_duration 3600, ratelimit_connections 1000000/60, ratelimit_messages and
#     ratelimit_recipients 1000000/3600 (so high that nothing is refused: the cost, not refusals),
#     state_store sqlite:$WORK/abuse-state/state.db and control_path there, the other without; bench.py's
#     main workload (smtp-source -s 32 -m 3000 -l 2048) through each, interleaved, ABUSE_REPEAT times:
#     T_on, T_off, T_on / T_off against 1.10, the state file's size and the state_store / ratelimit log
#     lines; a third smtpgate with the same limits on a throw-away PostgreSQL server (Debian's
#     postgresql run as nobody, unix socket in its own temporary directory, no TCP, fsync on as in
#     production): T_pg and T_pg / T_off against 1.15 (printed as not measured when PostgreSQL is
#     not installed);
#   * bench/policy (a package of its own that links SMTPGateCore, built here with
#     `swift build -c release --package-path bench/policy`): RateTable + LockTable with 1,000 and 1,000,000
#     tracked clients (all loopback clients are one key, so this cannot go through the daemon); ns per
#     lock check + rate check + rate update, keys uniform over all clients and from a hot set of 1,000,
#     the ratio 1M / 1k against 1.5, and the resident set per tracked client.  Skipped with a message when
#     swift is missing or the build fails (BENCH_POLICY=1 makes that an error).
# Then the access-map section (issue 10), the same program as `policy-bench --maps` (bench/policy/Sources/policy-bench/
# MapBench.swift): texthash: maps of MAPS_SIZES entries generated in memory ("d<i>.example REJECT forged", every
# 10th "postmaster@d<i-1>.example OK") and loaded with AccessMaps.load (load time, resident set and heap per
# entry), then check_sender_access's lookup (AccessMaps.lookup of AccessKeys.address(sender), key lists
# precomputed) for senders (a) in neither map, (b) for entries drawn uniformly from all of the map's, (c) from a
# hot set of 1,000: ns per lookup, the ratio 100,000 / 100 per mix, the target <= 1.5 judged on (a), the usual
# case of a sender_access map (most senders are listed nowhere).  Skipped like the policy section (BENCH_MAPS=1
# makes that an error).
# Then the DNSBL section (bench/dnsbl_bench.py: the dnsbl check at connect), on 127.0.0.1 only: bench/slow_dns.py
# (a stdlib DNS responder answering every query DNSBL_DELAY_MS late: NXDOMAIN with SOA TTL/MINIMUM 300 in
# zones cached*, TTL 0 in zones fresh*), one smtp-sink and three smtpgate instances with the abuse section's
# "off" configuration: without dnsbl, with `dnsbl cached1,cached2,cached3.bench.example` and with
# `dnsbl fresh1,fresh2,fresh3.bench.example`, both with dns_server 127.0.0.1@PORT and timeout_dns 5 (every
# session asks the fresh zones, and its greeting waits for the answers; the cached ones are asked once).
# bench.py's main workload through each, interleaved, DNSBL_REPEAT times: T_off, T_cached, T_fresh, session
# rates, rate_cached / rate_off and rate_fresh / rate_off against 0.90, each run's DNS queries from the
# responder's counters (SIGUSR1) and the connect -> 220 latency of DNSBL_GREETING sequential sessions.  All
# clients are 127.0.0.1, so every session asks the same names, and libunbound answers a question already in
# flight from that one query: in the parallel runs the fresh instance sends about one query per zone per
# DNSBL_DELAY_MS, not one per session (the sequential sessions send exactly one).  Sanity checks that fail
# the section: one query per zone per sequential session and a resolver kept busy (>= 20% of back-to-back
# queries) in the parallel runs from the fresh instance, a handful in all from the cached one, none from the
# one without, every message at the sink, no dnsbl_error or reject line in any smtpgate log.
# Then the forward section (bench/forward_bench.py, issue 11: `[forward NAME]` sections, rinetd's job), on 127.0.0.1
# only: bench/tcp_pump.py (a stdlib raw TCP server end: FORWARD_WORKERS forked epoll workers, bulk connections on
# threads of their own) behind three plain TCP relays, haproxy (mode tcp, as in the loopback section), rinetd
# (Debian's 0.73, -f, its own config, pid and log file here) and smtpgate with only a `[forward]` section
# (mode fixed, no SMTP listener, max_connections = max_per_host = room for FORWARD_IDLE); the clients straight to
# the pump too (direct: the ceiling).  After a warm-up, FORWARD_IDLE connections held through each relay (connect,
# ping, answer, held; RSS before / held / after close, KiB per connection), then interleaved, FORWARD_REPEAT
# times: bulk up and bulk down (FORWARD_BULK_CONNS parallel connections x FORWARD_BULK_MIB MiB one way each, MB/s)
# and FORWARD_SESSIONS short sessions (connect, 30 bytes, 21-byte answer, close; FORWARD_INFLIGHT at a time over
# FORWARD_CLIENTS client processes, sessions/s).  Targets (met / NOT MET): bulk >= 0.90 x haproxy and >= rinetd,
# session rate >= rinetd.  Every run checked: each connection moved exactly its bytes, all completed, every
# process still running, and smtpgate's and rinetd's logs have one done-* line per connection and the bytes sent.
# BENCH_SECTIONS picks sections by name (loopback abuse policy maps dnsbl forward scan lab), e.g.
#   BENCH_SECTIONS="abuse policy" bench/run.sh
# runs only the two abuse-control sections; a section named there is required (as BENCH_X=1).
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
#   BENCH_LAB       auto (default): the NAT lab sections when run as root, skipped otherwise;
#                   1: required; 0: skipped; only: only the NAT lab sections
#   BENCH_SCAN      auto (default): the content-scanning section when clamd, clamdscan and sigtool
#                   are installed, skipped otherwise; 1: required; 0: skipped; only: only that section
#                   (BENCH_LAB=only and BENCH_SCAN=only skip the loopback sections and, unless both
#                   are given, the other one)
#   CLAMD_BIN       clamd binary (default: /usr/sbin/clamd); CLAMD_THREADS its MaxThreads (default: 12)
#   SCAN_MESSAGES   messages per scanning run (default: 1000) of SCAN_SIZE bytes (default: 51200),
#                   SCAN_CLIENTS parallel clients (default: 8), SCAN_PER_SESSION messages per SMTP
#                   session (default: 25), SCAN_REPEAT runs of each (default: REPEAT)
#   SCAN_SOCKET     unix (default) or tcp: how smtpgate and clamdscan reach clamd
#   HELPER_BIN      smtpgate-helper binary (default: <repo>/.build/release/smtpgate-helper)
#   LAB_FW          nft (default) or iptables: the Examples/firewall-*.sh variant applied
#   LAB_MESSAGES    messages per session-rate run (default: 10000), LAB_SESSIONS parallel
#                   sessions (default: 32), LAB_REPEAT runs per lab (default: REPEAT)
#   HELPER_ENTRIES  conntrack table sizes measured (default: "1000 100000")
#   HELPER_REPEAT   passes over HELPER_ENTRIES (default: 3: 1k 100k 1k 100k 1k 100k; median)
#   HELPER_INFLIGHT queries in flight in the throughput runs (default: 64; W=1 runs too)
#   HELPER_SECONDS  measured seconds per helper run (default: 3, after 0.5 s of warm-up)
#   BENCH_SECTIONS  the sections to run, names separated by spaces or commas: loopback (smtp-source, haproxy,
#                   idle memory), abuse, metrics, policy, maps, instructions, dnsbl, forward, scan, lab (default: empty = all, each as its
#                   BENCH_X says); when set it overrides BENCH_LAB, BENCH_SCAN, BENCH_ABUSE, BENCH_POLICY, BENCH_MAPS,
#                   BENCH_DNSBL and BENCH_FORWARD
#   BENCH_ABUSE     auto (default: with the loopback sections), 1 or 0: the abuse-control session section
#   ABUSE_REPEAT    runs of each smtpgate in it (default: REPEAT)
#   BENCH_METRICS   auto (default: with the loopback sections), 1 or 0: the metrics section (bench/metrics_bench.py:
#                   the abuse section's workload through smtpgate with admin_listen and /metrics scraped every
#                   second, and without; T_on / T_off against 1.03); METRICS_REPEAT runs each (default: REPEAT)
#   BENCH_POLICY    auto (default: with the loopback sections, skipped if swift is missing or the build
#                   fails), 1 (required) or 0: the per-client tables section (bench/policy)
#   POLICY_OPS      timed operations per run (default: 2000000), POLICY_REPEAT runs (default: REPEAT),
#   POLICY_SIZES    tracked-client counts (default: "1000 1000000"; the ratio is last / first)
#   POLICY_BUILD_TIMEOUT  bound on bench/policy's build, seconds (default: 1800); SWIFT (default: swift)
#   RELEASE_FLAGS   swift build flags for bench/policy (default: make release's, -Xswiftc -enforce-exclusivity=unchecked)
#   BENCH_MAPS      auto (default: with the loopback sections, skipped if swift is missing or the build
#                   fails), 1 (required) or 0: the access-map section (bench/policy, policy-bench --maps)
#   MAPS_OPS        lookups per run (default: 2000000), MAPS_REPEAT runs and loads (default: 5; median),
#   MAPS_SIZES      map entries (default: "100 100000"; the ratio is last / first)
#   BENCH_INSTR     auto (default: with the loopback sections when valgrind is installed), 1 or 0: the
#                   instructions section (bench/instr_bench.py: instructions per session under callgrind of
#                   haproxy, smtpgate with the policy features off and on, and bench/policy's bare NIO relay)
#   INSTR_SESSIONS  sessions per counted run (default: 1000)
#   BENCH_DNSBL     auto (default: with the loopback sections), 1 or 0: the DNSBL section
#   DNSBL_REPEAT    runs of each smtpgate in it (default: REPEAT)
#   DNSBL_DELAY_MS  the DNS responder's delay per answer, milliseconds (default: 5)
#   DNSBL_MESSAGES  messages (= sessions) per run (default: 3000, bench.py's main workload)
#   DNSBL_GREETING  sequential sessions per smtpgate timed connect -> 220 (default: 50; 0 skips them)
#   BENCH_FORWARD   auto (default: with the loopback sections), 1 or 0: the forward section (needs rinetd)
#   FORWARD_REPEAT  runs of each workload through each target (default: REPEAT)
#   FORWARD_BULK_CONNS, FORWARD_BULK_MIB  bulk connections per run (default: 8) and MiB each (default: 256)
#   FORWARD_SESSIONS  short sessions per run (default: 10000), FORWARD_INFLIGHT at a time (default: 32),
#                   over FORWARD_CLIENTS client processes (default: 2)
#   FORWARD_IDLE    idle connections held through each relay for the memory figure (default: 5000; 0 skips it)
#   FORWARD_WORKERS bench/tcp_pump.py's processes (default: 2)
#   RINETD_BIN      rinetd binary (default: /usr/sbin/rinetd)
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
PYTHON="${PYTHON:-/usr/bin/python3}"
BENCH_LAB="${BENCH_LAB:-auto}"
HELPER_BIN="${HELPER_BIN:-$REPO_DIR/.build/release/smtpgate-helper}"
LAB_FW="${LAB_FW:-nft}"
LAB_MESSAGES="${LAB_MESSAGES:-10000}"
LAB_SESSIONS="${LAB_SESSIONS:-32}"
LAB_REPEAT="${LAB_REPEAT:-$REPEAT}"
HELPER_ENTRIES="${HELPER_ENTRIES:-1000 100000}"
HELPER_REPEAT="${HELPER_REPEAT:-3}"
HELPER_INFLIGHT="${HELPER_INFLIGHT:-64}"
HELPER_SECONDS="${HELPER_SECONDS:-3}"
BENCH_SCAN="${BENCH_SCAN:-auto}"
CLAMD_BIN="${CLAMD_BIN:-/usr/sbin/clamd}"
CLAMD_THREADS="${CLAMD_THREADS:-12}"
SCAN_MESSAGES="${SCAN_MESSAGES:-1000}"
SCAN_SIZE="${SCAN_SIZE:-51200}"
SCAN_CLIENTS="${SCAN_CLIENTS:-8}"
SCAN_PER_SESSION="${SCAN_PER_SESSION:-25}"
SCAN_REPEAT="${SCAN_REPEAT:-$REPEAT}"
SCAN_SOCKET="${SCAN_SOCKET:-unix}"
BENCH_SECTIONS="${BENCH_SECTIONS:-}"
BENCH_ABUSE="${BENCH_ABUSE:-auto}"
ABUSE_REPEAT="${ABUSE_REPEAT:-$REPEAT}"
BENCH_METRICS="${BENCH_METRICS:-auto}"
METRICS_REPEAT="${METRICS_REPEAT:-$REPEAT}"
BENCH_POLICY="${BENCH_POLICY:-auto}"
POLICY_OPS="${POLICY_OPS:-2000000}"
POLICY_REPEAT="${POLICY_REPEAT:-$REPEAT}"
POLICY_SIZES="${POLICY_SIZES:-1000 1000000}"
POLICY_BUILD_TIMEOUT="${POLICY_BUILD_TIMEOUT:-1800}"
BENCH_MAPS="${BENCH_MAPS:-auto}"
MAPS_OPS="${MAPS_OPS:-2000000}"
MAPS_REPEAT="${MAPS_REPEAT:-5}"
MAPS_SIZES="${MAPS_SIZES:-100 100000}"
BENCH_INSTR="${BENCH_INSTR:-auto}"
INSTR_SESSIONS="${INSTR_SESSIONS:-1000}"
SWIFT="${SWIFT:-swift}"
# The flags of `make release` (Makefile): bench/policy's programs, the floor among them, are built as smtpgate is.
RELEASE_FLAGS="${RELEASE_FLAGS--Xswiftc -enforce-exclusivity=unchecked}"
BENCH_DNSBL="${BENCH_DNSBL:-auto}"
DNSBL_REPEAT="${DNSBL_REPEAT:-$REPEAT}"
DNSBL_DELAY_MS="${DNSBL_DELAY_MS:-5}"
DNSBL_MESSAGES="${DNSBL_MESSAGES:-3000}"
DNSBL_GREETING="${DNSBL_GREETING:-50}"
BENCH_FORWARD="${BENCH_FORWARD:-auto}"
FORWARD_REPEAT="${FORWARD_REPEAT:-$REPEAT}"
FORWARD_BULK_CONNS="${FORWARD_BULK_CONNS:-8}"
FORWARD_BULK_MIB="${FORWARD_BULK_MIB:-256}"
FORWARD_SESSIONS="${FORWARD_SESSIONS:-10000}"
FORWARD_INFLIGHT="${FORWARD_INFLIGHT:-32}"
FORWARD_CLIENTS="${FORWARD_CLIENTS:-2}"
FORWARD_IDLE="${FORWARD_IDLE:-5000}"
FORWARD_WORKERS="${FORWARD_WORKERS:-2}"
RINETD_BIN="${RINETD_BIN:-/usr/sbin/rinetd}"

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

for v in REPEAT IDLE_SESSIONS NBTHREAD RUN_TIMEOUT BENCH_TIMEOUT LAB_MESSAGES LAB_SESSIONS LAB_REPEAT \
         HELPER_REPEAT HELPER_INFLIGHT HELPER_SECONDS CLAMD_THREADS SCAN_MESSAGES SCAN_SIZE SCAN_CLIENTS \
         SCAN_PER_SESSION SCAN_REPEAT ABUSE_REPEAT METRICS_REPEAT POLICY_OPS POLICY_REPEAT POLICY_BUILD_TIMEOUT MAPS_OPS MAPS_REPEAT \
         DNSBL_REPEAT DNSBL_DELAY_MS DNSBL_MESSAGES DNSBL_GREETING FORWARD_REPEAT FORWARD_BULK_CONNS FORWARD_BULK_MIB \
         FORWARD_SESSIONS FORWARD_INFLIGHT FORWARD_CLIENTS FORWARD_IDLE FORWARD_WORKERS INSTR_SESSIONS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
(( REPEAT >= 1 && REPEAT <= 50 )) || die "REPEAT must be between 1 and 50"
(( NBTHREAD >= 1 )) || die "NBTHREAD must be >= 1"
[[ "$BENCH_LAB" =~ ^(auto|0|1|only)$ ]] || die "BENCH_LAB must be auto, 0, 1 or only (got '$BENCH_LAB')"
[[ "$LAB_FW" =~ ^(nft|iptables)$ ]] || die "LAB_FW must be nft or iptables (got '$LAB_FW')"
[[ "$BENCH_SCAN" =~ ^(auto|0|1|only)$ ]] || die "BENCH_SCAN must be auto, 0, 1 or only (got '$BENCH_SCAN')"
[[ "$SCAN_SOCKET" =~ ^(unix|tcp)$ ]] || die "SCAN_SOCKET must be unix or tcp (got '$SCAN_SOCKET')"
(( SCAN_MESSAGES >= 1 && SCAN_MESSAGES <= 100000 && SCAN_SIZE >= 40000 && SCAN_SIZE <= 10000000 \
   && SCAN_CLIENTS >= 1 && SCAN_CLIENTS <= 256 && SCAN_PER_SESSION >= 1 && SCAN_REPEAT >= 1 && SCAN_REPEAT <= 50 \
   && CLAMD_THREADS >= 1 && CLAMD_THREADS <= 256 )) \
    || die "SCAN_MESSAGES must be 1-100000, SCAN_SIZE 40000-10000000 (room for the attachment), SCAN_CLIENTS 1-256,
       SCAN_PER_SESSION >= 1, SCAN_REPEAT 1-50, CLAMD_THREADS 1-256"
(( LAB_MESSAGES >= 1 && LAB_SESSIONS >= 1 && LAB_REPEAT >= 1 && LAB_REPEAT <= 50 )) \
    || die "LAB_MESSAGES and LAB_SESSIONS must be >= 1, LAB_REPEAT between 1 and 50"
(( HELPER_REPEAT >= 1 && HELPER_REPEAT <= 20 && HELPER_INFLIGHT >= 1 && HELPER_INFLIGHT <= 1000 \
   && HELPER_SECONDS >= 1 && HELPER_SECONDS <= 60 )) \
    || die "HELPER_REPEAT must be 1-20, HELPER_INFLIGHT 1-1000 (the helper queues 1024), HELPER_SECONDS 1-60"
[[ "$HELPER_ENTRIES" =~ ^[0-9]+( +[0-9]+)*$ ]] || die "HELPER_ENTRIES must be numbers separated by spaces"
for n in $HELPER_ENTRIES; do
    (( n >= 1 && n <= 1000000 )) || die "HELPER_ENTRIES: $n is not between 1 and 1000000"
done
[[ "$BENCH_ABUSE" =~ ^(auto|0|1)$ ]] || die "BENCH_ABUSE must be auto, 0 or 1 (got '$BENCH_ABUSE')"
[[ "$BENCH_POLICY" =~ ^(auto|0|1)$ ]] || die "BENCH_POLICY must be auto, 0 or 1 (got '$BENCH_POLICY')"
(( ABUSE_REPEAT >= 1 && ABUSE_REPEAT <= 50 && POLICY_REPEAT >= 1 && POLICY_REPEAT <= 50 \
   && POLICY_OPS >= 10000 && POLICY_OPS <= 100000000 )) \
    || die "ABUSE_REPEAT and POLICY_REPEAT must be 1-50, POLICY_OPS 10000-100000000"
[[ "$BENCH_DNSBL" =~ ^(auto|0|1)$ ]] || die "BENCH_DNSBL must be auto, 0 or 1 (got '$BENCH_DNSBL')"
(( DNSBL_REPEAT >= 1 && DNSBL_REPEAT <= 50 && DNSBL_DELAY_MS <= 1000 && DNSBL_MESSAGES >= 100 \
   && DNSBL_MESSAGES <= 100000 && DNSBL_GREETING <= 10000 )) \
    || die "DNSBL_REPEAT must be 1-50, DNSBL_DELAY_MS 0-1000 (timeout_dns is 5 s), DNSBL_MESSAGES 100-100000,
       DNSBL_GREETING 0-10000"
[[ "$BENCH_FORWARD" =~ ^(auto|0|1)$ ]] || die "BENCH_FORWARD must be auto, 0 or 1 (got '$BENCH_FORWARD')"
(( FORWARD_REPEAT >= 1 && FORWARD_REPEAT <= 50 && FORWARD_BULK_CONNS >= 1 && FORWARD_BULK_CONNS <= 256 \
   && FORWARD_BULK_MIB >= 1 && FORWARD_BULK_MIB <= 4096 && FORWARD_SESSIONS >= 100 && FORWARD_SESSIONS <= 1000000 \
   && FORWARD_INFLIGHT >= 1 && FORWARD_INFLIGHT <= 1024 && FORWARD_CLIENTS >= 1 && FORWARD_CLIENTS <= 64 \
   && FORWARD_IDLE <= 30000 && FORWARD_WORKERS >= 1 && FORWARD_WORKERS <= 64 )) \
    || die "FORWARD_REPEAT must be 1-50, FORWARD_BULK_CONNS 1-256, FORWARD_BULK_MIB 1-4096, FORWARD_SESSIONS 100-1000000,
       FORWARD_INFLIGHT 1-1024, FORWARD_CLIENTS 1-64, FORWARD_IDLE 0-30000, FORWARD_WORKERS 1-64"
[[ "$POLICY_SIZES" =~ ^[0-9]+( +[0-9]+)*$ ]] || die "POLICY_SIZES must be numbers separated by spaces"
for n in $POLICY_SIZES; do
    (( n >= 1000 && n <= 10000000 )) || die "POLICY_SIZES: $n is not between 1000 and 10000000"
done
[[ "$BENCH_MAPS" =~ ^(auto|0|1)$ ]] || die "BENCH_MAPS must be auto, 0 or 1 (got '$BENCH_MAPS')"
[[ "$BENCH_INSTR" =~ ^(auto|0|1)$ ]] || die "BENCH_INSTR must be auto, 0 or 1 (got '$BENCH_INSTR')"
(( INSTR_SESSIONS >= 100 && INSTR_SESSIONS <= 100000 )) || die "INSTR_SESSIONS must be 100-100000"
(( MAPS_REPEAT >= 1 && MAPS_REPEAT <= 50 && MAPS_OPS >= 10000 && MAPS_OPS <= 100000000 )) \
    || die "MAPS_REPEAT must be 1-50, MAPS_OPS 10000-100000000"
[[ "$MAPS_SIZES" =~ ^[0-9]+( +[0-9]+)*$ ]] || die "MAPS_SIZES must be numbers separated by spaces"
for n in $MAPS_SIZES; do
    (( n >= 10 && n <= 2000000 )) || die "MAPS_SIZES: $n is not between 10 and 2000000 (AccessMaps.maxEntries)"
done
# LOOPBACK: the smtp-source / haproxy / idle-memory sections; BENCH_LAB, BENCH_SCAN, BENCH_ABUSE, BENCH_DNSBL,
# BENCH_FORWARD and BENCH_POLICY end up 0 or 1 (BENCH_POLICY and BENCH_MAPS may stay auto: skipped with a message if bench/policy
# cannot be built).
LOOPBACK=1
if [[ -n "$BENCH_SECTIONS" ]]; then
    LOOPBACK=0 BENCH_ABUSE=0 BENCH_METRICS=0 BENCH_POLICY=0 BENCH_MAPS=0 BENCH_INSTR=0 BENCH_DNSBL=0 BENCH_FORWARD=0 BENCH_SCAN=0 BENCH_LAB=0
    for sec in ${BENCH_SECTIONS//,/ }; do
        case "$sec" in
            loopback) LOOPBACK=1 ;;
            abuse) BENCH_ABUSE=1 ;;
            metrics) BENCH_METRICS=1 ;;
            policy) BENCH_POLICY=1 ;;
            maps) BENCH_MAPS=1 ;;
            instructions) BENCH_INSTR=1 ;;
            dnsbl) BENCH_DNSBL=1 ;;
            forward) BENCH_FORWARD=1 ;;
            scan) BENCH_SCAN=1 ;;
            lab) BENCH_LAB=1 ;;
            *) die "BENCH_SECTIONS: unknown section '$sec' (loopback abuse metrics policy maps instructions dnsbl forward scan lab)" ;;
        esac
    done
elif [[ "$BENCH_LAB" == only || "$BENCH_SCAN" == only ]]; then
    LOOPBACK=0
    [[ "$BENCH_LAB" == auto ]] && BENCH_LAB=0
    [[ "$BENCH_SCAN" == auto ]] && BENCH_SCAN=0
    [[ "$BENCH_LAB" == only ]] && BENCH_LAB=1
    [[ "$BENCH_SCAN" == only ]] && BENCH_SCAN=1
fi
# with the loopback sections unless asked for by name (BENCH_LAB=only / BENCH_SCAN=only skip them)
[[ "$BENCH_ABUSE" == auto ]] && BENCH_ABUSE=$LOOPBACK
[[ "$BENCH_METRICS" == auto ]] && BENCH_METRICS=$LOOPBACK
[[ "$BENCH_DNSBL" == auto ]] && BENCH_DNSBL=$LOOPBACK
[[ "$BENCH_FORWARD" == auto ]] && BENCH_FORWARD=$LOOPBACK
[[ "$BENCH_POLICY" == auto ]] && (( LOOPBACK == 0 )) && BENCH_POLICY=0
[[ "$BENCH_MAPS" == auto ]] && (( LOOPBACK == 0 )) && BENCH_MAPS=0
if [[ "$BENCH_INSTR" == auto ]]; then
    if (( LOOPBACK )) && command -v valgrind >/dev/null 2>&1; then BENCH_INSTR=1; else BENCH_INSTR=0; fi
fi
if [[ "$BENCH_LAB" == auto ]]; then
    if [[ "$(id -u)" == 0 ]]; then BENCH_LAB=1; else
        BENCH_LAB=0; say "not root: the NAT lab sections are skipped (BENCH_LAB=1 requires them)"
    fi
fi
if [[ "$BENCH_SCAN" == auto ]]; then
    if [[ -x "$CLAMD_BIN" ]] && command -v clamdscan >/dev/null 2>&1 && command -v sigtool >/dev/null 2>&1; then
        BENCH_SCAN=1
    else
        BENCH_SCAN=0; say "clamd, clamdscan or sigtool missing: the content-scanning section is skipped (BENCH_SCAN=1 requires it)"
    fi
fi

# ---------------------------------------------------------------- tools
missing=()
tools=(smtp-sink smtp-source "$PYTHON" timeout)
(( LOOPBACK || BENCH_FORWARD )) && tools+=(haproxy)
(( BENCH_FORWARD )) && tools+=("$RINETD_BIN")
[[ "$BENCH_LAB" == 0 ]] || tools+=(ip ss conntrack "$LAB_FW")
[[ "$BENCH_SCAN" == 0 ]] || tools+=("$CLAMD_BIN" clamdscan sigtool)
[[ "$BENCH_POLICY" == 1 || "$BENCH_MAPS" == 1 ]] && tools+=("$SWIFT")
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if (( ${#missing[@]} )); then
    die "missing tool(s): ${missing[*]} -- install with: apt-get install -y postfix haproxy python3 coreutils
       (smtp-sink and smtp-source ship in Debian's postfix package, in /usr/sbin; the NAT lab needs
       iproute2 conntrack nftables iptables, or BENCH_LAB=0 skips it; the scanning section needs
       clamav-daemon clamdscan clamav, or BENCH_SCAN=0 skips it; the per-client tables section needs
       the Swift toolchain, or BENCH_POLICY=0 and BENCH_MAPS=0 skip them; the forward section needs
       rinetd (scripts/deps.sh installs it and keeps its system service off), or BENCH_FORWARD=0 skips it)"
fi
[[ -x "$SMTPGATE_BIN" ]] || die "smtpgate binary not found at $SMTPGATE_BIN -- run 'swift build -c release' (or set SMTPGATE_BIN)"
if [[ "$BENCH_LAB" != 0 ]]; then
    [[ "$(id -u)" == 0 ]] || die "the NAT lab sections need root (network namespaces); BENCH_LAB=0 skips them"
    [[ -x "$HELPER_BIN" ]] || die "smtpgate-helper binary not found at $HELPER_BIN -- run 'swift build -c release' (or set HELPER_BIN)"
    [[ -f "$REPO_DIR/Tests/e2e/lib.sh" ]] || die "Tests/e2e/lib.sh (the lab's topology helpers) is missing"
fi

# ---------------------------------------------------------------- limits
# 5,000 proxied sessions = 10,000 descriptors in the proxy; ask for 65536 and
# settle for the hard limit when the environment (e.g. a container) caps it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE="$(ulimit -n)"
[[ "$NOFILE" == unlimited ]] && NOFILE=1048576
if (( LOOPBACK && IDLE_SESSIONS > 0 && NOFILE < 2 * IDLE_SESSIONS + 256 )); then
    die "open-file limit is $NOFILE; $IDLE_SESSIONS idle sessions need at least $(( 2 * IDLE_SESSIONS + 256 )) (raise the hard limit or lower IDLE_SESSIONS)"
fi
if (( BENCH_FORWARD && FORWARD_IDLE > 0 && NOFILE < 2 * FORWARD_IDLE + 256 )); then
    die "open-file limit is $NOFILE; $FORWARD_IDLE idle forwarded connections need at least $(( 2 * FORWARD_IDLE + 256 )) (raise the hard limit or lower FORWARD_IDLE)"
fi
HAPROXY_MAXCONN=$(( (NOFILE - 256) / 2 ))
(( HAPROXY_MAXCONN > 50000 )) && HAPROXY_MAXCONN=50000
SINK_MAXCONN=$(( NOFILE - 256 ))
(( SINK_MAXCONN > 20000 )) && SINK_MAXCONN=20000

# ---------------------------------------------------------------- cleanup
WORK="$(mktemp -d "${TMPDIR:-/tmp}/smtpgate-bench.XXXXXX")"
PIDS=()          # long-running servers, in start order
DRIVER_PID=""
DRIVER_RC=0
wait_driver() {  # waits for $DRIVER_PID in this shell (the EXIT trap may stop it); its status in DRIVER_RC
    set +e
    wait "$DRIVER_PID"
    DRIVER_RC=$?
    set -e
    DRIVER_PID=""
}
STATUS_OK=0
PG_DIR=""        # the abuse section's throw-away PostgreSQL server (see pg_start)
LAB_DIRS=()      # NAT labs (each lists its namespaces and pids; see lab_new)

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
    [[ -n "$PG_DIR" ]] && pg_stop
    for (( i = ${#LAB_DIRS[@]} - 1; i >= 0; i-- )); do     # lab processes, then their namespaces
        ( LAB_DIR="${LAB_DIRS[i]}"; lab_cleanup )
    done
    if (( rc != 0 || STATUS_OK == 0 )) || [[ "$BENCH_KEEP" == 1 ]]; then
        say "work directory kept: $WORK"
        if (( rc != 0 )); then
            for f in "$WORK"/*.err "$WORK"/smtpgate.log "$WORK"/scan-*.log "$WORK"/abuse-*.log "$WORK"/dnsbl-*.log "$WORK"/fwd-gate.log \
                     "$WORK"/policy-build.log \
                     "$WORK"/lab-*/reason; do
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

section_sink() {  # section_sink NAME PORT BACKLOG: a section's smtp-sink on 127.0.0.1, listening; sets LAST_PID
    local flags=(-c -m 1000 -t 300)
    [[ "$(id -u)" == 0 ]] && flags=(-u nobody "${flags[@]}")
    start "$1" "$WORK/$1.out" "$WORK/$1.err" smtp-sink "${flags[@]}" "127.0.0.1:$2" "$3"
    wait_listen smtp-sink "$2" "$LAST_PID"
}

stop_servers() { # the loopback servers started so far, newest first: a quiet host for what follows
    local i
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
        stop_pid "${PIDS[i]%%:*}" "${PIDS[i]#*:}"
    done
    PIDS=()
}

gate_conf() {    # gate_conf FILE PORT SINK_PORT [LINE...] : the bench's smtpgate config, then LINEs
    local file="$1" port="$2" sink="$3"; shift 3
    # every daemon has a control socket: its own, unless a LINE names one (gates run side by side)
    local ctl="control_path ${file%.conf}.sock" l
    for l in "$@"; do [[ $l == control_path* ]] && ctl="# control_path below"; done
    cat >"$file" <<EOF
# generated by bench/run.sh -- a realistic fixed-destination deployment
$ctl
proxy_name bench.smtpgate.test
bind_address 127.0.0.1
port $port
mode fixed
fixed_server 127.0.0.1
fixed_server_port $sink
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
    if (( $# )); then printf '%s\n' "$@" >>"$file"; fi
}

gate_start() {   # gate_start NAME CONF LOG PORT : check-config, start, wait; sets LAST_PID
    local name="$1" conf="$2" log="$3" port="$4"
    "$SMTPGATE_BIN" check-config "$conf" >"$WORK/$name-check.out" 2>"$WORK/$name-check.err" \
        || { cat "$WORK/$name-check.err" >&2; die "smtpgate check-config rejected $conf"; }
    start "$name" "$WORK/$name.out" "$WORK/$name.err" "$SMTPGATE_BIN" run --config "$conf" --log-file "$log"
    wait_listen "$name" "$port" "$LAST_PID"
}

haproxy_start() {  # haproxy_start NAME CONF PORT DEST_PORT LABEL : a plain TCP relay -> 127.0.0.1:DEST_PORT; LAST_PID
    local name="$1" conf="$2" port="$3" dest="$4" label="$5"
    cat >"$conf" <<EOF
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
frontend ${label}_in
    bind 127.0.0.1:$port
    maxconn $HAPROXY_MAXCONN
    default_backend ${label}_dest
backend ${label}_dest
    server dest 127.0.0.1:$dest
EOF
    haproxy -c -q -f "$conf" >"$WORK/$name-check.err" 2>&1 \
        || { cat "$WORK/$name-check.err" >&2; die "haproxy rejected the generated config $conf"; }
    start "$name" "$WORK/$name.out" "$WORK/$name.err" haproxy -db -f "$conf"
    wait_listen "$name" "$port" "$LAST_PID"
}

# ---------------------------------------------------------------- NAT lab (definitions)
# The NAT lab sections run after the loopback ones.  Tests/e2e/lib.sh provides the topology
# (lab_topology: cli -- rtr -- prx/br0, rtr -- mta; addresses in 10.77.0.0/16 and fd77::/48 only,
# routes to those prefixes only), the firewall examples (apply_example), the processes (bg_start,
# proxy_start, helper_start, pid_of) and lab_cleanup.  Every lab records its namespaces and pids in
# its own $WORK/lab-NAME/; cleanup() runs lab_cleanup for each, so nothing outlives the bench.
LAB_BASE="sgb$$"                     # namespace names: sgbPID-LAB-HOST
LAB_RESULTS="$WORK/lab-results.jsonl"
LAB_FAILED=0
LAB_CONF=(max_per_host=0 timeout_connect=5)   # the same in both labs: 32 sessions come from one client

lab_use() {      # lab_use NAME : make NAME the lab lib.sh's functions act on
    LAB_TAG="$LAB_BASE-$1" LAB_DIR="$WORK/lab-$1"
    PROXY_LOG="$LAB_DIR/proxy.log"
}

lab_new() {      # lab_new NAME : a fresh lab with the e2e topology
    lab_use "$1"
    lab_init "$LAB_TAG" "$LAB_DIR"
    LAB_DIRS+=("$LAB_DIR")
    lab_topology
    local n   # room for the session runs' TIME_WAIT sockets (a setting of these namespaces only)
    for n in cli rtr prx; do nsx "$n" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"; done
}

lab_down() {     # lab_down NAME : its processes and namespaces, now
    ( lab_use "$1"; lab_cleanup )
}

lab_pid() {      # lab_pid LAB NAME : pid of a process lib.sh's bg_start started in that lab
    awk -v n="$2" '$2 == n { p = $1 } END { print p }' "$WORK/lab-$1/pids"
}

lab_listening() {  # lab_listening HOST PORT : a TCP listener on PORT in the current lab's HOST
    [[ -n "$(ip netns exec "$(ns "$1")" ss -Hltn "sport = :$2" 2>/dev/null)" ]]
}

lab_sink() {     # smtp-sink as the MTA on M_IP:25 (counters, -c, in LAB_DIR/sink.out)
    bg_start sink mta smtp-sink -u nobody -c -m 20000 -t 300 "$M_IP:25" 5000
    wait_for 10 lab_listening mta 25 || fail "smtp-sink did not start: $(tail -n 3 "$LAB_DIR/sink.out")"
}

lab_py() {       # lab_py SECONDS ARGS... : bench/lab.py under timeout, interruptible like the driver
    local limit="$1" rc; shift
    timeout --signal=TERM --kill-after=15 "$limit" "$PYTHON" "$BENCH_DIR/lab.py" "$@" &
    DRIVER_PID=$!
    wait_driver
    rc=$DRIVER_RC
    (( rc != 124 )) || say "bench/lab.py $1 exceeded ${limit}s"
    return "$rc"
}

# Section 2: the session rate through the router, local (netfilter) vs split (remote-udp).
lab_sessions() {
    say "NAT lab: session rate, smtpgate on the router (netfilter) vs split (remote-udp + helper)"
    lab_new local
    apply_example rtr "firewall-local.$LAB_FW.sh" CUSTOMER_IF=in0 PROXY_PORT=$PROXY_PORT
    lab_sink
    conf_from_example smtpgate-local.conf "$LAB_DIR/proxy.conf" "${LAB_CONF[@]}"
    proxy_start rtr "$LAB_DIR/proxy.conf"

    lab_new split
    apply_example rtr "firewall-split-router.$LAB_FW.sh" CUSTOMER_IF=in0 PROXY_IP=$P_IP ROUTER_IP=$R_OUT \
        PROXY_IP6=$P_IP6 ROUTER_IP6=$R_OUT6 PROXY_PORT=$PROXY_PORT
    apply_example prx "firewall-split-proxy.$LAB_FW.sh" ROUTER_NETS="$R_OUT/32" ROUTER_NETS6="$R_OUT6/128" \
        PROXY_PORT=$PROXY_PORT
    lab_sink
    make_key "$LAB_DIR/helper.key"
    helper_start helper rtr --listen $R_OUT --allow $P_IP/32 --key-file "$LAB_DIR/helper.key"
    conf_from_example smtpgate-split.conf "$LAB_DIR/proxy.conf" "${LAB_CONF[@]}" \
        remote_udp_key_file="$LAB_DIR/helper.key"
    proxy_start prx "$LAB_DIR/proxy.conf"

    local lab args=()
    for lab in local split; do
        args+=(--lab "$lab:$LAB_BASE-$lab-cli:$WORK/lab-$lab/sink.out:$(lab_pid $lab sink):$(lab_pid $lab proxy)"
               --proxy-log "$lab:$WORK/lab-$lab/proxy.log")
    done
    lab_py "$BENCH_TIMEOUT" sessions "${args[@]}" --helper "split:$(lab_pid split helper):$WORK/lab-split/helper.log" \
        --dest "$M_IP:25" --sessions "$LAB_SESSIONS" --messages "$LAB_MESSAGES" --size 2048 \
        --repeat "$LAB_REPEAT" --run-timeout "$RUN_TIMEOUT" --out "$LAB_RESULTS" || LAB_FAILED=1
    lab_down local
    lab_down split
}

# Section 1: smtpgate-helper lookups with HELPER_ENTRIES conntrack entries on the router.
lab_helper() {
    local n pass proto w need=0 max fam auth
    for n in $HELPER_ENTRIES; do (( n > need )) && need=$n; done
    say "NAT lab: smtpgate-helper lookups with $HELPER_ENTRIES conntrack entries, $HELPER_REPEAT passes"
    lab_new helper
    apply_example rtr "firewall-split-router.$LAB_FW.sh" CUSTOMER_IF=in0 PROXY_IP=$P_IP ROUTER_IP=$R_OUT \
        PROXY_IP6=$P_IP6 ROUTER_IP6=$R_OUT6 PROXY_PORT=$PROXY_PORT
    apply_example prx "firewall-split-proxy.$LAB_FW.sh" ROUTER_NETS="$R_OUT/32" ROUTER_NETS6="$R_OUT6/128" \
        PROXY_PORT=$PROXY_PORT
    make_key "$LAB_DIR/helper.key"
    # The router's table must hold the largest set (plus the lab's own flows).  Newer kernels make
    # nf_conntrack_max per namespace but read-only there (inherited, at most the host's value).
    need=$(( need + 1024 ))
    max=$(nsx rtr sysctl -n net.netfilter.nf_conntrack_max)
    if (( max < need )); then
        nsx rtr sysctl -qw net.netfilter.nf_conntrack_max="$need" 2>/dev/null || true
        max=$(nsx rtr sysctl -n net.netfilter.nf_conntrack_max)
        (( max >= need )) || die "nf_conntrack_max is $max in the router's namespace and cannot be raised there;
       $need are needed for HELPER_ENTRIES='$HELPER_ENTRIES' (lower them, or raise the host's net.netfilter.nf_conntrack_max)"
    fi
    LAB_META+=(--meta "ct_max=$max")
    local inflights=1; (( HELPER_INFLIGHT > 1 )) && inflights="1 $HELPER_INFLIGHT"
    for (( pass = 1; pass <= HELPER_REPEAT; pass++ )); do
        for n in $HELPER_ENTRIES; do
            lab_py 300 entries --ns "$(ns rtr)" --count "$n" --out "$LAB_RESULTS" || { LAB_FAILED=1; continue; }
            for proto in v2 0x0402; do
                # v2: the helper remembers every nonce for 2 x --window in 131,072 slots; a fresh
                # helper per run and a cap under that keep the runs free of replay_cache_full drops
                auth=(--key "$LAB_DIR/helper.key" --max-queries 120000)
                [[ "$proto" == v2 ]] || auth=(--legacy-secret 4242)
                for w in $inflights; do
                    alive helper && bg_stop helper
                    helper_start helper rtr --listen $R_OUT --allow $P_IP/32 --key-file "$LAB_DIR/helper.key" \
                        --legacy-secret 4242
                    lab_py 120 helper --ns "$(ns prx)" --helper-pid "$(pid_of helper)" \
                        --helper-log "$LAB_DIR/helper.log" --entries "$n" --phase "$pass" --out "$LAB_RESULTS" \
                        -- "$R_OUT" --entries "$n" --inflight "$w" --seconds "$HELPER_SECONDS" --warmup 0.5 \
                        "${auth[@]}" || LAB_FAILED=1
                done
            done
        done
    done
    lab_down helper
}

run_lab() {
    # shellcheck source=../Tests/e2e/lib.sh
    . "$REPO_DIR/Tests/e2e/lib.sh"
    LAB_META=(--meta "fw=$LAB_FW" --meta "helper_version=$("$HELPER_BIN" --version 2>&1 | head -n 1 || echo '?')"
              --meta "ct_buckets=$(cat /proc/sys/net/netfilter/nf_conntrack_buckets 2>/dev/null || echo '?')")
    : > "$LAB_RESULTS"
    lab_helper
    lab_sessions
    "$PYTHON" "$BENCH_DIR/lab.py" report --results "$LAB_RESULTS" "${LAB_META[@]}" || LAB_FAILED=1
    (( LAB_FAILED == 0 )) || die "NAT lab runs had failures (see above and $WORK/lab-*)"
}

# ---------------------------------------------------------------- content scanning (definitions)
# Issue 4's figure: the same messages through smtpgate with clamd scanning, through smtpgate without,
# and straight to clamd with clamdscan; every process here is on 127.0.0.1 or a unix socket in $WORK.
run_scan() {
    local sink_port on_port off_port clamd_port endpoint via clamd_pid sink_pid on_pid off_pid rc
    local sock="$WORK/scan-clamd.sock"
    read -r sink_port on_port off_port clamd_port < <("$PYTHON" "$BENCH_DIR/util.py" free-ports 4)
    [[ -n "$clamd_port" ]] || die "could not pick free ports"
    say "content scanning: clamd (unix socket + 127.0.0.1:$clamd_port), smtp-sink $sink_port, smtpgate with" \
        "clamd $on_port, without $off_port"
    mkdir -p "$WORK/scan-db" "$WORK/scan-tmp"
    mkdir -m 700 "$WORK/scan-spool"
    # a one-signature database (the EICAR file's MD5): nothing is downloaded and clamd is ready at once
    # shellcheck disable=SC2016  # the test string's $ signs are literal
    printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$WORK/eicar.com"
    ( cd "$WORK" && sigtool --md5 eicar.com ) >"$WORK/scan-db/test.hdb" \
        || die "sigtool could not make the EICAR signature"
    {
        echo "# generated by bench/run.sh -- clamd for the content-scanning section"
        echo "Foreground yes"
        [[ "$(id -u)" == 0 ]] && echo "User root"
        echo "LocalSocket $sock"
        echo "LocalSocketMode 600"
        echo "FixStaleSocket yes"
        echo "TCPSocket $clamd_port"
        echo "TCPAddr 127.0.0.1"
        echo "DatabaseDirectory $WORK/scan-db"
        echo "TemporaryDirectory $WORK/scan-tmp"
        echo "LogFile $WORK/scan-clamd.log"
        echo "LogTime yes"
        echo "MaxThreads $CLAMD_THREADS"
        echo "MaxConnectionQueueLength 64"
        # every run hands clamd the same messages again; its cache of clean results would turn all
        # runs after the first into hash lookups, unlike real mail, where each message is new
        echo "DisableCache yes"
    } >"$WORK/scan-clamd.conf"
    if [[ "$SCAN_SOCKET" == unix ]]; then
        endpoint="$sock" via="unix socket"
        echo "LocalSocket $sock" >"$WORK/scan-clamdscan.conf"
    else
        endpoint="127.0.0.1:$clamd_port" via="TCP"
        printf 'TCPSocket %s\nTCPAddr 127.0.0.1\n' "$clamd_port" >"$WORK/scan-clamdscan.conf"
    fi
    start scan-clamd "$WORK/scan-clamd.out" "$WORK/scan-clamd.err" "$CLAMD_BIN" --config-file="$WORK/scan-clamd.conf"
    clamd_pid=$LAST_PID
    "$PYTHON" "$BENCH_DIR/util.py" wait-clamd "$sock" "$clamd_pid" 60 \
        || die "clamd did not answer PING (see $WORK/scan-clamd.log)"
    wait_listen clamd "$clamd_port" "$clamd_pid"

    section_sink scan-sink "$sink_port" 1000
    sink_pid=$LAST_PID

    gate_conf "$WORK/scan-gate-on.conf" "$on_port" "$sink_port" \
        "# content scanning: clamd INSTREAM; spool_memory, max_scans, timeout_scanner at their defaults" \
        "antivirus_type clamd" "antivirus_path $endpoint" "spool_path $WORK/scan-spool"
    gate_conf "$WORK/scan-gate-off.conf" "$off_port" "$sink_port" "spool_path $WORK/scan-spool"
    gate_start scan-gate-on "$WORK/scan-gate-on.conf" "$WORK/scan-gate-on.log" "$on_port"
    on_pid=$LAST_PID
    gate_start scan-gate-off "$WORK/scan-gate-off.conf" "$WORK/scan-gate-off.log" "$off_port"
    off_pid=$LAST_PID

    say "running: SCAN_MESSAGES=$SCAN_MESSAGES x $SCAN_SIZE bytes, SCAN_CLIENTS=$SCAN_CLIENTS," \
        "SCAN_PER_SESSION=$SCAN_PER_SESSION, SCAN_REPEAT=$SCAN_REPEAT, clamd via $via"
    timeout --signal=TERM --kill-after=15 "$BENCH_TIMEOUT" "$PYTHON" "$BENCH_DIR/scan_bench.py" \
        --gate "scan:$on_port:$on_pid:$WORK/scan-gate-on.log" --gate "off:$off_port:$off_pid:$WORK/scan-gate-off.log" \
        --sink-out "$WORK/scan-sink.out" --sink-pid "$sink_pid" --clamd-pid "$clamd_pid" \
        --clamd-info "$("$CLAMD_BIN" --version 2>/dev/null | head -n 1 || echo '?') ($CLAMD_BIN), one signature (EICAR MD5), MaxThreads $CLAMD_THREADS, DisableCache yes" \
        --gate-version "$("$SMTPGATE_BIN" version 2>&1 | head -n 1 || echo '?') ($SMTPGATE_BIN)" \
        --clamdscan-conf "$WORK/scan-clamdscan.conf" --clamdscan-via "$via" --msg-dir "$WORK/scan-msgs" \
        --count "$SCAN_MESSAGES" --size "$SCAN_SIZE" --clients "$SCAN_CLIENTS" --per-session "$SCAN_PER_SESSION" \
        --repeat "$SCAN_REPEAT" --run-timeout "$RUN_TIMEOUT" &
    DRIVER_PID=$!
    wait_driver
    rc=$DRIVER_RC
    (( rc != 124 )) || say "bench/scan_bench.py exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
    stop_servers
    (( rc == 0 )) || die "content-scanning runs had failures (driver exit $rc)"
}

# ---------------------------------------------------------------- abuse control (definitions)
PG_BIN=/usr/lib/postgresql/15/bin
as_nobody() {    # PostgreSQL's server programs refuse to run as root
    if [[ "$(id -u)" == 0 ]]; then /usr/sbin/runuser -u nobody -- "$@"; else "$@"; fi
}

pg_start() {     # a throw-away PostgreSQL server in PG_DIR: unix socket PG_DIR/sock only, trust for smtpgate
    PG_DIR="$(mktemp -d /tmp/smtpgate-bench-pg.XXXXXX)"
    mkdir "$PG_DIR/sock"
    [[ "$(id -u)" == 0 ]] && chown nobody "$PG_DIR" "$PG_DIR/sock"
    ( cd / && as_nobody "$PG_BIN/initdb" -D "$PG_DIR/data" -U smtpgate --auth=trust -E UTF8 --no-sync ) \
        >"$PG_DIR/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$PG_DIR/initdb.log")"
    ( cd / && as_nobody "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-k $PG_DIR/sock -c listen_addresses=''" start ) >/dev/null 2>&1 \
        || die "PostgreSQL did not start: $(tail -n 5 "$PG_DIR/server.log")"
    ( cd / && as_nobody "$PG_BIN/createdb" -h "$PG_DIR/sock" -U smtpgate smtpgate ) >/dev/null 2>&1 \
        || die "createdb failed"
}

pg_stop() {
    ( cd / && as_nobody "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop ) >/dev/null 2>&1 || true
    rm -rf -- "$PG_DIR"
    PG_DIR=""
}

# Part 1: the same smtp-source workload through smtpgate with locks and three rate limits (SQLite store)
# and through smtpgate without; one smtp-sink behind both, all on 127.0.0.1.
run_abuse() {
    local sink_port on_port off_port pg_port sink_pid on_pid off_pid pg_pid rc pg_gate=() pg_note=()
    local dir="$WORK/abuse-state"
    local limits=("lock_on virus" "lock_duration 3600"
        "ratelimit_connections 1000000/60" "ratelimit_messages 1000000/3600" "ratelimit_recipients 1000000/3600")
    read -r sink_port on_port off_port pg_port < <("$PYTHON" "$BENCH_DIR/util.py" free-ports 4)
    [[ -n "$pg_port" ]] || die "could not pick free ports"
    say "abuse control: smtp-sink $sink_port, smtpgate with locks + rate limits $on_port (SQLite), $pg_port (PostgreSQL), without $off_port"
    mkdir -m 700 "$dir"
    section_sink abuse-sink "$sink_port" 5000
    sink_pid=$LAST_PID
    gate_conf "$WORK/abuse-gate-on.conf" "$on_port" "$sink_port" \
        "# abuse control: limits far above the workload, so the figure is the bookkeeping's cost" \
        "${limits[@]}" "state_store sqlite:$dir/state.db" "control_path $dir/control.sock"
    gate_conf "$WORK/abuse-gate-off.conf" "$off_port" "$sink_port"
    gate_start abuse-gate-on "$WORK/abuse-gate-on.conf" "$WORK/abuse-gate-on.log" "$on_port"
    on_pid=$LAST_PID
    gate_start abuse-gate-off "$WORK/abuse-gate-off.conf" "$WORK/abuse-gate-off.log" "$off_port"
    off_pid=$LAST_PID
    if [[ -x "$PG_BIN/initdb" ]]; then
        pg_start
        gate_conf "$WORK/abuse-gate-pg.conf" "$pg_port" "$sink_port" \
            "# the same limits on a PostgreSQL state store (a pool's)" \
            "${limits[@]}" "state_store postgresql:///smtpgate?host=$PG_DIR/sock&user=smtpgate" "control_path $dir/control-pg.sock"
        gate_start abuse-gate-pg "$WORK/abuse-gate-pg.conf" "$WORK/abuse-gate-pg.log" "$pg_port"
        pg_pid=$LAST_PID
        pg_gate=(--gate "pg:$pg_port:$pg_pid:$WORK/abuse-gate-pg.log")
    else
        pg_note=(--pg-missing "PostgreSQL is not installed ($PG_BIN/initdb missing; scripts/deps.sh installs it)")
    fi
    say "running: ABUSE_REPEAT=$ABUSE_REPEAT"
    timeout --signal=TERM --kill-after=15 "$BENCH_TIMEOUT" "$PYTHON" "$BENCH_DIR/abuse_bench.py" \
        --gate "on:$on_port:$on_pid:$WORK/abuse-gate-on.log" --gate "off:$off_port:$off_pid:$WORK/abuse-gate-off.log" \
        "${pg_gate[@]}" "${pg_note[@]}" \
        --sink-out "$WORK/abuse-sink.out" --sink-pid "$sink_pid" --state-db "$dir/state.db" \
        --gate-version "$("$SMTPGATE_BIN" version 2>&1 | head -n 1 || echo '?') ($SMTPGATE_BIN)" \
        --repeat "$ABUSE_REPEAT" --run-timeout "$RUN_TIMEOUT" &
    DRIVER_PID=$!
    wait_driver
    rc=$DRIVER_RC
    (( rc != 124 )) || say "bench/abuse_bench.py exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
    stop_servers
    (( rc == 0 )) || die "abuse-control runs had failures (driver exit $rc)"
    # smtpgate writes what it counted every 2 s and when it stops: the store as a long-running proxy leaves it
    "$PYTHON" "$BENCH_DIR/abuse_bench.py" --store-only --state-db "$dir/state.db" \
        || die "could not read the abuse-control state file $dir/state.db"
    if [[ -n "$PG_DIR" ]]; then
        printf '   PostgreSQL store after smtpgate stopped: %s\n' "$( cd / && as_nobody "$PG_BIN/psql" -X -A -t -h "$PG_DIR/sock" \
            -U smtpgate -d smtpgate -c "SELECT 'locks ' || (SELECT count(*) FROM locks) || ', counters ' || (SELECT count(*) FROM counters) || ', database ' || pg_size_pretty(pg_database_size('smtpgate'))" 2>&1 )"
        pg_stop
    fi
}

# Part 2: the per-client tables at 1,000 and 1,000,000 clients, in a program of its own (bench/policy).
policy_skip() {  # policy_skip REASON : an error when the section was asked for, else a note in the results
    [[ "$BENCH_POLICY" == 1 ]] && die "per-client tables section: $1 (BENCH_POLICY=0 skips it)"
    say "per-client tables section skipped: $1"
    printf '\nPer-client tables (abuse control): skipped -- %s\n' "$1"
}

POLICY_BENCH_BIN=""     # set by policy_build once it worked
POLICY_BUILD_ERROR=""   # set by policy_build once it failed (the reason, for each section's skip message)
policy_build() {  # builds bench/policy once for the policy and maps sections; 0 with POLICY_BENCH_BIN set, else 1
    local pkg="$BENCH_DIR/policy" bin
    [[ -n "$POLICY_BENCH_BIN" ]] && return 0
    [[ -n "$POLICY_BUILD_ERROR" ]] && return 1
    command -v "$SWIFT" >/dev/null 2>&1 || { POLICY_BUILD_ERROR="$SWIFT not found"; return 1; }
    say "building bench/policy ($SWIFT build -c release --package-path bench/policy;" \
        "the first build takes minutes; log $WORK/policy-build.log)"
    timeout --signal=TERM --kill-after=15 "$POLICY_BUILD_TIMEOUT" \
        "$SWIFT" build -c release $RELEASE_FLAGS --package-path "$pkg" >"$WORK/policy-build.log" 2>&1 </dev/null &
    DRIVER_PID=$!
    wait_driver
    if (( DRIVER_RC != 0 )); then
        tail -n 15 "$WORK/policy-build.log" >&2
        POLICY_BUILD_ERROR="the build of bench/policy failed (exit $DRIVER_RC; see $WORK/policy-build.log)"
        return 1
    fi
    bin="$("$SWIFT" build -c release $RELEASE_FLAGS --package-path "$pkg" --show-bin-path 2>/dev/null)/policy-bench"
    [[ -x "$bin" ]] || { POLICY_BUILD_ERROR="no policy-bench binary at $bin after the build"; return 1; }
    POLICY_BENCH_BIN="$bin"
}

run_policy() {
    local rc
    policy_build || { policy_skip "$POLICY_BUILD_ERROR"; return 0; }
    say "per-client tables: POLICY_SIZES='$POLICY_SIZES', POLICY_OPS=$POLICY_OPS, POLICY_REPEAT=$POLICY_REPEAT"
    timeout --signal=TERM --kill-after=15 "$BENCH_TIMEOUT" "$POLICY_BENCH_BIN" --ops "$POLICY_OPS" --repeat "$POLICY_REPEAT" \
        --sizes "$(tr -s ' ' ',' <<<"$POLICY_SIZES")" </dev/null &
    DRIVER_PID=$!
    wait_driver
    rc=$DRIVER_RC
    (( rc != 124 )) || say "policy-bench exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
    (( rc == 0 )) || die "per-client tables run failed (policy-bench exit $rc)"
}

# Part 3: texthash: access maps at 100 and 100,000 entries (issue 10), the same program's --maps mode.
maps_skip() {  # maps_skip REASON : an error when the section was asked for, else a note in the results
    [[ "$BENCH_MAPS" == 1 ]] && die "access-map section: $1 (BENCH_MAPS=0 skips it)"
    say "access-map section skipped: $1"
    printf '\nAccess maps (check_sender_access, texthash:): skipped -- %s\n' "$1"
}

run_maps() {
    local rc
    policy_build || { maps_skip "$POLICY_BUILD_ERROR"; return 0; }
    say "access maps: MAPS_SIZES='$MAPS_SIZES', MAPS_OPS=$MAPS_OPS, MAPS_REPEAT=$MAPS_REPEAT"
    timeout --signal=TERM --kill-after=15 "$BENCH_TIMEOUT" "$POLICY_BENCH_BIN" --maps --ops "$MAPS_OPS" --repeat "$MAPS_REPEAT" \
        --sizes "$(tr -s ' ' ',' <<<"$MAPS_SIZES")" </dev/null &
    DRIVER_PID=$!
    wait_driver
    rc=$DRIVER_RC
    (( rc != 124 )) || say "policy-bench --maps exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
    (( rc == 0 )) || die "access-map run failed (policy-bench --maps exit $rc)"
}

# ---------------------------------------------------------------- instructions (definitions)
# Issue 13: user-space instructions per session under callgrind, haproxy against smtpgate (features off, then
# locks + rate limits + a DNSBL zone + a texthash: map + metrics) and bench/policy's bare NIO relay (the floor).
# valgrind 3.19 cannot read the Swift 6.3 toolchain's DWARF, so the binaries counted are copies made with
# strip --strip-debug (symbols kept, for callgrind_annotate of the output files kept in $WORK/instr).
run_instructions() {
    local sink_port port dns_port rc relay_arm=() relay_bin=() i c
    local dir="$WORK/instr"
    command -v valgrind >/dev/null 2>&1 || die "the instructions section needs valgrind (apt-get install valgrind)"
    read -r sink_port port < <("$PYTHON" "$BENCH_DIR/util.py" free-ports 2)
    [[ -n "$port" ]] || die "could not pick free ports"
    dns_port="$("$PYTHON" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    mkdir -m 700 "$dir"
    strip --strip-debug -o "$dir/smtpgate" "$SMTPGATE_BIN" || die "strip --strip-debug $SMTPGATE_BIN failed"
    if policy_build; then
        strip --strip-debug -o "$dir/bare-relay" "$(dirname "$POLICY_BENCH_BIN")/bare-relay" \
            || die "strip --strip-debug bare-relay failed"
        relay_arm=(--arm "floor:relay:-") relay_bin=(--relay "$dir/bare-relay")
    else
        say "instructions: no bare NIO relay ($POLICY_BUILD_ERROR): the floor is not measured"
    fi
    start instr-dns "$WORK/instr-dns.out" "$WORK/instr-dns.err" \
        "$PYTHON" "$BENCH_DIR/slow_dns.py" --port "$dns_port" --delay-ms 0 --stats "$dir/dns-stats.json"
    "$PYTHON" "$BENCH_DIR/slow_dns.py" --probe ready.probe.invalid --port "$dns_port" --wait 10 >/dev/null 2>&1 \
        || die "bench/slow_dns.py did not answer on 127.0.0.1:$dns_port"
    section_sink instr-sink "$sink_port" 5000
    : >"$dir/sender_access"
    for (( i = 0; i < 1000; i++ )); do printf 'd%d.example REJECT forged\n' "$i"; done >"$dir/sender_access"
    printf '%s\n' "# generated by bench/run.sh -- plain TCP relay, no logging (as the loopback section's)" \
        "global" "    maxconn $HAPROXY_MAXCONN" "    nbthread $NBTHREAD" \
        "defaults" "    mode tcp" "    option dontlognull" "    timeout connect 10s" "    timeout client 600s" \
        "    timeout server 600s" "frontend instr_in" "    bind 127.0.0.1:$port" "    default_backend instr_dest" \
        "backend instr_dest" "    server dest 127.0.0.1:$sink_port" >"$dir/haproxy.cfg"
    haproxy -c -q -f "$dir/haproxy.cfg" >/dev/null 2>&1 || die "haproxy rejected $dir/haproxy.cfg"
    gate_conf "$dir/off.conf" "$port" "$sink_port" "control_path $dir/off.sock"
    gate_conf "$dir/policy.conf" "$port" "$sink_port" "control_path $dir/policy.sock" \
        "# every policy feature on, limits far above the workload: the bookkeeping's cost" \
        "lock_on virus,dnsbl" "lock_duration 3600" "state_store sqlite:$dir/state.db" \
        "ratelimit_connections 1000000/60" "ratelimit_messages 1000000/3600" "ratelimit_recipients 1000000/3600" \
        "dnsbl fresh1.bench.example" "dns_server 127.0.0.1@$dns_port" "timeout_dns 5" \
        "sender_restrictions check_sender_access texthash:$dir/sender_access, permit" \
        "admin_listen 127.0.0.1:$(( port == 65535 ? port - 1 : port + 1 ))"
    for c in off policy; do
        "$SMTPGATE_BIN" check-config "$dir/$c.conf" >"$dir/$c-check.out" 2>&1 \
            || { cat "$dir/$c-check.out" >&2; die "smtpgate check-config rejected $dir/$c.conf"; }
    done
    say "instructions: INSTR_SESSIONS=$INSTR_SESSIONS through each relay under callgrind (slow: minutes)"
    timeout --signal=TERM --kill-after=15 "$BENCH_TIMEOUT" "$PYTHON" "$BENCH_DIR/instr_bench.py" \
        --arm "haproxy:haproxy:$dir/haproxy.cfg" --arm "smtpgate:smtpgate:$dir/off.conf" \
        --arm "smtpgate-policy:smtpgate:$dir/policy.conf" "${relay_arm[@]}" "${relay_bin[@]}" \
        --port "$port" --sink-port "$sink_port" --sink-out "$WORK/instr-sink.out" --sessions "$INSTR_SESSIONS" \
        --work "$dir" --smtpgate "$dir/smtpgate" \
        --describe "smtpgate: $("$SMTPGATE_BIN" version 2>&1 | head -n 1), mode fixed, logging at the default level" \
        --describe "smtpgate-policy: lock_on, three rate limits (SQLite store), dnsbl (one zone, TTL 0: every session asks), check_sender_access texthash: (1,000 entries), admin_listen" \
        --describe "haproxy: $(haproxy -v 2>&1 | head -n 1 | awk '{print $3}'), nbthread $NBTHREAD; floor: bench/policy's bare-relay (NIO accept, connect, copy, close)" &
    DRIVER_PID=$!
    wait_driver
    rc=$DRIVER_RC
    (( rc != 124 )) || say "bench/instr_bench.py exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
    stop_servers
    (( rc == 0 )) || die "instruction counts had failures (driver exit $rc)"
}

# ---------------------------------------------------------------- DNSBL (definitions)
# The same smtp-source workload through smtpgate without dnsbl, with three cached zones and with three
# never-cached ones, all asking one slow DNS responder (bench/slow_dns.py); one smtp-sink behind all three.
run_dnsbl() {
    local sink_port off_port cached_port fresh_port dns_port sink_pid dns_pid off_pid cached_pid fresh_pid rc
    local cached_zones="cached1.bench.example,cached2.bench.example,cached3.bench.example"
    local fresh_zones="fresh1.bench.example,fresh2.bench.example,fresh3.bench.example"
    local dns_stats="$WORK/dnsbl-dns-stats.json"
    read -r sink_port off_port cached_port fresh_port < <("$PYTHON" "$BENCH_DIR/util.py" free-ports 4)
    [[ -n "$fresh_port" ]] || die "could not pick free ports"
    # UDP for the responder: a port free for UDP on 127.0.0.1 (bound and released here)
    dns_port="$("$PYTHON" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    [[ -n "$dns_port" ]] || die "could not pick a free UDP port"
    say "DNSBL: slow DNS responder 127.0.0.1:$dns_port (UDP, ${DNSBL_DELAY_MS} ms), smtp-sink $sink_port," \
        "smtpgate without dnsbl $off_port, cached zones $cached_port, fresh zones $fresh_port"
    start dnsbl-dns "$WORK/dnsbl-dns.out" "$WORK/dnsbl-dns.err" \
        "$PYTHON" "$BENCH_DIR/slow_dns.py" --port "$dns_port" --delay-ms "$DNSBL_DELAY_MS" --stats "$dns_stats"
    dns_pid=$LAST_PID
    # a name outside the zones (REFUSED): the server answers, and no zone's count moves
    "$PYTHON" "$BENCH_DIR/slow_dns.py" --probe ready.probe.invalid --port "$dns_port" --wait 10 >"$WORK/dnsbl-probe.out" \
        2>&1 || die "bench/slow_dns.py did not answer on 127.0.0.1:$dns_port (see $WORK/dnsbl-dns.err)"
    kill -0 "$dns_pid" 2>/dev/null || die "bench/slow_dns.py exited (see $WORK/dnsbl-dns.err)"
    local zone
    for zone in cached1 fresh1; do  # the zones answer as the section expects (NXDOMAIN, its SOA's TTL)
        say "  probe 1.0.0.127.$zone.bench.example: $("$PYTHON" "$BENCH_DIR/slow_dns.py" \
            --probe "1.0.0.127.$zone.bench.example" --port "$dns_port" 2>&1)"
    done
    section_sink dnsbl-sink "$sink_port" 5000
    sink_pid=$LAST_PID
    local dns_conf=("dns_server 127.0.0.1@$dns_port" "timeout_dns 5")
    gate_conf "$WORK/dnsbl-gate-off.conf" "$off_port" "$sink_port"
    gate_conf "$WORK/dnsbl-gate-cached.conf" "$cached_port" "$sink_port" \
        "# DNSBL: three zones whose \"not listed\" answers are cached for 300 s" "dnsbl $cached_zones" "${dns_conf[@]}"
    gate_conf "$WORK/dnsbl-gate-fresh.conf" "$fresh_port" "$sink_port" \
        "# DNSBL: three zones answered with TTL 0: every session asks all three" "dnsbl $fresh_zones" "${dns_conf[@]}"
    gate_start dnsbl-gate-off "$WORK/dnsbl-gate-off.conf" "$WORK/dnsbl-gate-off.log" "$off_port"
    off_pid=$LAST_PID
    gate_start dnsbl-gate-cached "$WORK/dnsbl-gate-cached.conf" "$WORK/dnsbl-gate-cached.log" "$cached_port"
    cached_pid=$LAST_PID
    gate_start dnsbl-gate-fresh "$WORK/dnsbl-gate-fresh.conf" "$WORK/dnsbl-gate-fresh.log" "$fresh_port"
    fresh_pid=$LAST_PID
    say "running: DNSBL_REPEAT=$DNSBL_REPEAT, DNSBL_MESSAGES=$DNSBL_MESSAGES, DNSBL_GREETING=$DNSBL_GREETING"
    timeout --signal=TERM --kill-after=15 "$BENCH_TIMEOUT" "$PYTHON" "$BENCH_DIR/dnsbl_bench.py" \
        --gate "off:$off_port:$off_pid:$WORK/dnsbl-gate-off.log" \
        --gate "cached:$cached_port:$cached_pid:$WORK/dnsbl-gate-cached.log" \
        --gate "fresh:$fresh_port:$fresh_pid:$WORK/dnsbl-gate-fresh.log" \
        --zones "cached:$cached_zones" --zones "fresh:$fresh_zones" \
        --sink-out "$WORK/dnsbl-sink.out" --sink-pid "$sink_pid" \
        --dns-pid "$dns_pid" --dns-stats "$dns_stats" --dns-port "$dns_port" --delay-ms "$DNSBL_DELAY_MS" \
        --gate-version "$("$SMTPGATE_BIN" version 2>&1 | head -n 1 || echo '?') ($SMTPGATE_BIN)" \
        --messages "$DNSBL_MESSAGES" --greeting "$DNSBL_GREETING" \
        --repeat "$DNSBL_REPEAT" --run-timeout "$RUN_TIMEOUT" &
    DRIVER_PID=$!
    wait_driver
    rc=$DRIVER_RC
    (( rc != 124 )) || say "bench/dnsbl_bench.py exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
    stop_servers   # slow_dns.py prints its totals when it stops
    [[ -s "$WORK/dnsbl-dns.out" ]] && printf '   %s\n' "$(tail -n 1 "$WORK/dnsbl-dns.out")"
    (( rc == 0 )) || die "DNSBL runs had failures (driver exit $rc)"
}

# ---------------------------------------------------------------- forward (definitions)
# Issue 11: smtpgate's [forward] section against haproxy (mode tcp) and rinetd, all relaying to one
# bench/tcp_pump.py; the clients (bench/forward_bench.py, tcp_pump's client ends) go to each and to the pump.
run_forward() {
    local pump_port hap_port rin_port gate_port pump_pid hap_pid rin_pid gate_pid rc maxconn
    read -r pump_port hap_port rin_port gate_port < <("$PYTHON" "$BENCH_DIR/util.py" free-ports 4)
    [[ -n "$gate_port" ]] || die "could not pick free ports"
    say "forward: tcp_pump.py $pump_port, haproxy $hap_port, rinetd $rin_port, smtpgate [forward] $gate_port"
    local others
    others="$(pgrep -x rinetd 2>/dev/null | tr '\n' ' ' || true)"
    [[ -z "$others" ]] || say "note: a rinetd not started here is running (pid $others): a system service?" \
        "(scripts/deps.sh disables it after installing); it shares the host with the measurements"
    start fwd-pump "$WORK/fwd-pump.out" "$WORK/fwd-pump.err" \
        "$PYTHON" "$BENCH_DIR/tcp_pump.py" serve --port "$pump_port" --workers "$FORWARD_WORKERS"
    pump_pid=$LAST_PID
    wait_listen tcp_pump.py "$pump_port" "$pump_pid"
    haproxy_start fwd-haproxy "$WORK/fwd-haproxy.cfg" "$hap_port" "$pump_port" fwd
    hap_pid=$LAST_PID
    # rinetd: its own pid file (not /var/run/rinetd.pid), in the foreground; a log file, as Debian's
    # /etc/rinetd.conf has one (smtpgate logs every forward connection too)
    printf '# generated by bench/run.sh -- one TCP forwarding rule\npidlogfile %s\nlogfile %s\n127.0.0.1 %s 127.0.0.1 %s\n' \
        "$WORK/fwd-rinetd.pid" "$WORK/fwd-rinetd.log" "$rin_port" "$pump_port" >"$WORK/fwd-rinetd.conf"
    start fwd-rinetd "$WORK/fwd-rinetd.out" "$WORK/fwd-rinetd.err" "$RINETD_BIN" -f -c "$WORK/fwd-rinetd.conf"
    rin_pid=$LAST_PID
    wait_listen rinetd "$rin_port" "$rin_pid"
    # room for FORWARD_IDLE connections (two descriptors each) within the open-file limit, as haproxy's maxconn
    maxconn=$(( (NOFILE - 256) / 2 ))
    (( maxconn > 10000 )) && maxconn=10000
    cat >"$WORK/fwd-gate.conf" <<EOF
# generated by bench/run.sh -- only a [forward] section: no SMTP listener
shutdown_timeout 5
control_path $WORK/fwd-gate-control.sock

[forward bench]
bind_address 127.0.0.1
port $gate_port
mode fixed
fixed_server 127.0.0.1
fixed_server_port $pump_port
connect_queue 4096
max_connections $maxconn
max_per_host $maxconn
timeout_connect 10
timeout_idle 600
EOF
    gate_start fwd-gate "$WORK/fwd-gate.conf" "$WORK/fwd-gate.log" "$gate_port"
    gate_pid=$LAST_PID
    say "running: FORWARD_REPEAT=$FORWARD_REPEAT, bulk $FORWARD_BULK_CONNS x $FORWARD_BULK_MIB MiB," \
        "FORWARD_SESSIONS=$FORWARD_SESSIONS ($FORWARD_INFLIGHT in flight, $FORWARD_CLIENTS clients), FORWARD_IDLE=$FORWARD_IDLE"
    timeout --signal=TERM --kill-after=15 "$BENCH_TIMEOUT" "$PYTHON" "$BENCH_DIR/forward_bench.py" \
        --target "direct:$pump_port:" --target "haproxy:$hap_port:$hap_pid" --target "rinetd:$rin_port:$rin_pid" \
        --target "smtpgate:$gate_port:$gate_pid" --pump-pid "$pump_pid" --pump-workers "$FORWARD_WORKERS" \
        --gate-log "$WORK/fwd-gate.log" --gate-maxconn "$maxconn" \
        --gate-bin "$SMTPGATE_BIN" --gate-config "$WORK/fwd-gate.conf" \
        --gate-version "$("$SMTPGATE_BIN" version 2>&1 | head -n 1 || echo '?') ($SMTPGATE_BIN)" \
        --haproxy-version "$(haproxy -v 2>&1 | head -n 1 | awk '{print $3}')" --haproxy-threads "$NBTHREAD" \
        --haproxy-maxconn "$HAPROXY_MAXCONN" --rinetd-version "$("$RINETD_BIN" -v 2>&1 | head -n 1 | awk '{print $2}')" \
        --rinetd-log "$WORK/fwd-rinetd.log" \
        --bulk-conns "$FORWARD_BULK_CONNS" --bulk-mib "$FORWARD_BULK_MIB" --sessions "$FORWARD_SESSIONS" \
        --inflight "$FORWARD_INFLIGHT" --clients "$FORWARD_CLIENTS" --idle "$FORWARD_IDLE" \
        --repeat "$FORWARD_REPEAT" --run-timeout "$RUN_TIMEOUT" &
    DRIVER_PID=$!
    wait_driver
    rc=$DRIVER_RC
    (( rc != 124 )) || say "bench/forward_bench.py exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
    stop_servers   # tcp_pump.py prints its workers' totals when it stops
    grep -h '^tcp_pump worker totals' "$WORK/fwd-pump.out" 2>/dev/null | sed 's/^/   /' || true
    (( rc == 0 )) || die "forward runs had failures (driver exit $rc)"
}

# The metrics section: the same smtp-source workload through smtpgate with admin_listen (every session
# counted, /metrics scraped every second) and without; one smtp-sink behind both, all on 127.0.0.1.
run_metrics() {
    local sink_port on_port off_port admin_port sink_pid on_pid off_pid rc
    read -r sink_port on_port off_port admin_port < <("$PYTHON" "$BENCH_DIR/util.py" free-ports 4)
    [[ -n "$admin_port" ]] || die "could not pick free ports"
    say "metrics: smtp-sink $sink_port, smtpgate with admin_listen $on_port (admin $admin_port), without $off_port"
    section_sink metrics-sink "$sink_port" 5000
    sink_pid=$LAST_PID
    gate_conf "$WORK/metrics-gate-on.conf" "$on_port" "$sink_port" "# metrics on" "admin_listen 127.0.0.1:$admin_port"
    gate_conf "$WORK/metrics-gate-off.conf" "$off_port" "$sink_port"
    gate_start metrics-gate-on "$WORK/metrics-gate-on.conf" "$WORK/metrics-gate-on.log" "$on_port"
    on_pid=$LAST_PID
    gate_start metrics-gate-off "$WORK/metrics-gate-off.conf" "$WORK/metrics-gate-off.log" "$off_port"
    off_pid=$LAST_PID
    say "running: METRICS_REPEAT=$METRICS_REPEAT"
    timeout --signal=TERM --kill-after=15 "$BENCH_TIMEOUT" "$PYTHON" "$BENCH_DIR/metrics_bench.py" \
        --gate "on:$on_port:$on_pid:$WORK/metrics-gate-on.log" --gate "off:$off_port:$off_pid:$WORK/metrics-gate-off.log" \
        --admin-port "$admin_port" --sink-out "$WORK/metrics-sink.out" --sink-pid "$sink_pid" \
        --gate-version "$("$SMTPGATE_BIN" version 2>&1 | head -n 1 || echo '?') ($SMTPGATE_BIN)" \
        --repeat "$METRICS_REPEAT" --run-timeout "$RUN_TIMEOUT" &
    DRIVER_PID=$!
    wait_driver
    rc=$DRIVER_RC
    (( rc != 124 )) || say "bench/metrics_bench.py exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
    stop_servers
    (( rc == 0 )) || die "metrics runs had failures (driver exit $rc)"
}

after_loopback() {  # the sections that want a quiet host, in order
    if [[ "$BENCH_ABUSE" == 1 ]]; then run_abuse; fi
    if [[ "$BENCH_METRICS" == 1 ]]; then run_metrics; fi
    if [[ "$BENCH_POLICY" != 0 ]]; then run_policy; fi
    if [[ "$BENCH_MAPS" != 0 ]]; then run_maps; fi
    if [[ "$BENCH_INSTR" == 1 ]]; then run_instructions; fi
    if [[ "$BENCH_DNSBL" == 1 ]]; then run_dnsbl; fi
    if [[ "$BENCH_FORWARD" == 1 ]]; then run_forward; fi
    if [[ "$BENCH_SCAN" == 1 ]]; then run_scan; fi
    if [[ "$BENCH_LAB" == 1 ]]; then run_lab; fi
}

if (( LOOPBACK == 0 )); then
    say "BENCH_SECTIONS, BENCH_LAB=only or BENCH_SCAN=only: the loopback sections are skipped"
    after_loopback
    STATUS_OK=1
    exit 0
fi

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
haproxy_start haproxy "$WORK/haproxy.cfg" "$HAPROXY_PORT" "$SINK_PORT" smtp
HAPROXY_PID=$LAST_PID
wait_listen haproxy "$HAPROXY_PORT" "$HAPROXY_PID"

# ---------------------------------------------------------------- smtpgate
gate_conf "$WORK/smtpgate.conf" "$GATE_PORT" "$SINK_PORT"
GATE_VERSION="$("$SMTPGATE_BIN" version 2>&1 | head -n 1 || true)"
gate_start smtpgate "$WORK/smtpgate.conf" "$WORK/smtpgate.log" "$GATE_PORT"
GATE_PID=$LAST_PID

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
wait_driver
rc=$DRIVER_RC
(( rc == 124 )) && say "measurement phase exceeded BENCH_TIMEOUT=${BENCH_TIMEOUT}s"
(( rc == 0 )) || die "benchmark run had failures (driver exit $rc)"

# ---------------------------------------------------------------- content scanning, NAT lab
stop_servers
after_loopback
STATUS_OK=1
