# SMTPGate NAT lab: network namespaces with real routing, netfilter NAT and conntrack.
# Sourced by Tests/e2e/run.sh (bash).  Everything a scenario creates is recorded in its state
# directory and removed by lab_cleanup (namespaces we created, processes we started by pid).
#
# Address plan (only these, inside our own namespaces; no namespace has a default route):
#   cli   eth0 10.77.1.2/24  fd77:0:0:1::2/64          rtr in0  10.77.1.1/24  fd77:0:0:1::1/64
#   rtr   out0 10.77.2.1/24  fd77:0:0:2::1/64   --- bridge br0 in prx: prx 10.77.2.10/24 fd77:0:0:2::10/64
#   rtr   mta0 10.77.3.1/24  fd77:0:0:3::1/64          mta  eth0 10.77.3.25/24 fd77:0:0:3::25/64
#   optional: rtr2 out0 10.77.2.2 fd77:0:0:2::2 (on br0), in0 10.77.11.1 fd77:0:0:11::1; cli2 10.77.11.2 fd77:0:0:11::2
#             evil eth0 10.77.2.66 fd77:0:0:2::66 (on br0: a third host on the proxy's segment)
#             scn  eth0 10.77.2.30 fd77:0:0:2::30 (on br0: the scanner host, clamd on TCP)
#             cli3 eth0 10.77.1.3 fd77:0:0:1::3 (a second host on the client's segment: rtr's in0 is then a
#                  bridge with ports r-cli and r-cli3, so rules on in0 see both hosts)
# Routes: every host reaches 10.77.0.0/16 and fd77::/48 through its router, nothing else.
# (The issue's plan says fd77:1::/64 etc.; those lie outside fd77::/48, so the lab uses fd77:0:0:1::/64 etc.)

E2E_DIR=${E2E_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
REPO=${REPO:-$(cd "$E2E_DIR/../.." && pwd)}
EXAMPLES=$REPO/Examples
SMTPGATE_BIN=${SMTPGATE_BIN:-$REPO/.build/debug/smtpgate}
HELPER_BIN=${HELPER_BIN:-$REPO/.build/debug/smtpgate-helper}
PYTHON=${PYTHON:-/usr/bin/python3}

# Per-scenario state, set by lab_init: LAB_TAG (namespace prefix) and LAB_DIR (files).
LAB_TAG=${LAB_TAG:-}
LAB_DIR=${LAB_DIR:-}

C_IP=10.77.1.2;   C_IP6=fd77:0:0:1::2
R_IN=10.77.1.1;   R_IN6=fd77:0:0:1::1
R_OUT=10.77.2.1;  R_OUT6=fd77:0:0:2::1
R_MTA=10.77.3.1;  R_MTA6=fd77:0:0:3::1
P_IP=10.77.2.10;  P_IP6=fd77:0:0:2::10
M_IP=10.77.3.25;  M_IP6=fd77:0:0:3::25
R2_OUT=10.77.2.2; R2_OUT6=fd77:0:0:2::2
R2_IN=10.77.11.1; R2_IN6=fd77:0:0:11::1
C2_IP=10.77.11.2; C2_IP6=fd77:0:0:11::2
E_IP=10.77.2.66;  E_IP6=fd77:0:0:2::66
S_IP=10.77.2.30;  S_IP6=fd77:0:0:2::30
C3_IP=10.77.1.3;  C3_IP6=fd77:0:0:1::3
CLAMD_PORT=3310
PROXY_PORT=9199
# how the binaries say that a feature is still missing (probed; turns a scenario into a SKIP)
UNIMPLEMENTED_RE='not (yet )?(supported|implemented|available)|(not|implemented|available)( |\\x20)yet'

log() { printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }

# ---- outcome of a scenario (run in a subshell by run.sh) -------------------------------------
fail() { printf '%s\n' "$*" > "$LAB_DIR/reason"; log "FAIL: $*"; exit 1; }
skip() { printf '%s\n' "$*" > "$LAB_DIR/reason"; log "SKIP: $*"; exit 77; }

# ---- namespaces -------------------------------------------------------------------------------
lab_init() {   # lab_init TAG DIR
    LAB_TAG=$1 LAB_DIR=$2
    mkdir -p "$LAB_DIR"
    : > "$LAB_DIR/netns"; : > "$LAB_DIR/pids"
}

ns() { printf '%s-%s' "$LAB_TAG" "$1"; }
nsx() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

ns_add() {     # ns_add SHORTNAME [router]
    local name; name=$(ns "$1")
    ip netns add "$name" || return 1
    echo "$name" >> "$LAB_DIR/netns"
    ip -n "$name" link set lo up
    nsx "$1" sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2 \
        net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
        net.ipv6.conf.all.keep_addr_on_down=1 >/dev/null
    if [ "${2:-}" = router ]; then
        nsx "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
    fi
}

link() {       # link NS_A IF_A NS_B IF_B : a veth pair made directly inside the two namespaces
    ip link add "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")"
    ip -n "$(ns "$1")" link set "$2" up
    ip -n "$(ns "$3")" link set "$4" up
}

addr() {       # addr NS IF V4/len V6/len
    ip -n "$(ns "$1")" addr add "$3" dev "$2"
    ip -n "$(ns "$1")" -6 addr add "$4" dev "$2" nodad
}

via() {        # via NS GW4 GW6 : routes to the lab's prefixes only (never a default route)
    ip -n "$(ns "$1")" route add 10.77.0.0/16 via "$2"
    ip -n "$(ns "$1")" -6 route add fd77::/48 via "$3"
}

# lab_topology [router2] [evil] [hub] [scanner] [cli3]: builds cli, rtr, prx (with bridge br0), mta and
# the optional hosts.
lab_topology() {
    local want_r2=no want_evil=no want_hub=no want_scn=no want_c3=no a
    for a in "$@"; do
        case $a in router2) want_r2=yes;; evil) want_evil=yes;; hub) want_hub=yes;; scanner) want_scn=yes;;
                   cli3) want_c3=yes;; esac
    done
    ns_add cli; ns_add rtr router; ns_add prx; ns_add mta
    ip -n "$(ns prx)" link add br0 type bridge forward_delay 0 mcast_snooping 0
    ip -n "$(ns prx)" link set br0 up
    if [ $want_c3 = yes ]; then    # the client's segment is a bridge on the router: in0 with two hosts
        ns_add cli3
        ip -n "$(ns rtr)" link add in0 type bridge forward_delay 0 mcast_snooping 0
        ip -n "$(ns rtr)" link set in0 up
        link cli eth0 rtr r-cli;   ip -n "$(ns rtr)" link set r-cli master in0
        link cli3 eth0 rtr r-cli3; ip -n "$(ns rtr)" link set r-cli3 master in0
        addr cli3 eth0 $C3_IP/24 $C3_IP6/64
        via cli3 $R_IN $R_IN6
    else
        link cli eth0 rtr in0
    fi
    link rtr out0 prx p-rtr;  ip -n "$(ns prx)" link set p-rtr master br0
    link rtr mta0 mta eth0
    addr cli eth0 $C_IP/24 $C_IP6/64
    addr rtr in0 $R_IN/24 $R_IN6/64
    addr rtr out0 $R_OUT/24 $R_OUT6/64
    addr rtr mta0 $R_MTA/24 $R_MTA6/64
    addr prx br0 $P_IP/24 $P_IP6/64
    addr mta eth0 $M_IP/24 $M_IP6/64
    via cli $R_IN $R_IN6
    via prx $R_OUT $R_OUT6
    via mta $R_MTA $R_MTA6
    if [ $want_r2 = yes ]; then
        ns_add cli2; ns_add rtr2 router
        link cli2 eth0 rtr2 in0
        link rtr2 out0 prx p-rtr2; ip -n "$(ns prx)" link set p-rtr2 master br0
        addr cli2 eth0 $C2_IP/24 $C2_IP6/64
        addr rtr2 in0 $R2_IN/24 $R2_IN6/64
        addr rtr2 out0 $R2_OUT/24 $R2_OUT6/64
        via cli2 $R2_IN $R2_IN6
        via rtr2 $R_OUT $R_OUT6
        # router 1 and the proxy reach the second customer network through router 2
        ip -n "$(ns rtr)" route add 10.77.11.0/24 via $R2_OUT
        ip -n "$(ns rtr)" -6 route add fd77:0:0:11::/64 via $R2_OUT6
    fi
    if [ $want_evil = yes ]; then
        ns_add evil
        link evil eth0 prx p-evil; ip -n "$(ns prx)" link set p-evil master br0
        addr evil eth0 $E_IP/24 $E_IP6/64
        via evil $R_OUT $R_OUT6
    fi
    if [ $want_scn = yes ]; then
        ns_add scn
        link scn eth0 prx p-scn; ip -n "$(ns prx)" link set p-scn master br0
        addr scn eth0 $S_IP/24 $S_IP6/64
        via scn $R_OUT $R_OUT6
    fi
    if [ $want_hub = yes ]; then   # the bridge floods every frame to every port (a hub): evil sees all
        for a in $(ip -n "$(ns prx)" -br link show master br0 | awk '{ sub(/@.*/, "", $1); print $1 }'); do
            ip -n "$(ns prx)" link set dev "$a" type bridge_slave learning off
        done
        bridge -n "$(ns prx)" fdb flush dev br0 dynamic 2>/dev/null || true
        [ $want_evil = no ] || ip -n "$(ns evil)" link set eth0 promisc on
    fi
    lab_wait_links
}

lab_wait_links() {  # bounded: every link up and no IPv6 address still tentative
    local i
    for i in $(seq 1 50); do
        links_ready && return 0
        sleep 0.1
    done
    fail "lab links did not come up"
}
links_ready() {
    local n
    while read -r n; do
        # any interface (other than lo) not yet UP, or a tentative IPv6 address: not ready
        if ip -n "$n" -br link show | awk '$1 != "lo" && $2 != "UP" { bad = 1 } END { exit !bad }'; then return 1; fi
        [ -z "$(ip -n "$n" -6 addr show tentative)" ] || return 1
    done < "$LAB_DIR/netns"
}

# ---- processes ------------------------------------------------------------------------------
bg_start() {   # bg_start NAME NS cmd... : start in namespace NS, stdout/stderr to LAB_DIR/NAME.out
    local name=$1 n=$2; shift 2
    ip netns exec "$(ns "$n")" "$@" > "$LAB_DIR/$name.out" 2>&1 &
    local pid=$!
    echo "$pid $name" >> "$LAB_DIR/pids"
    eval "PID_${name//[^a-zA-Z0-9]/_}=$pid"
}

pid_of() { awk -v n="$1" '$2 == n { p = $1 } END { print p }' "$LAB_DIR/pids"; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

bg_stop() {    # bg_stop NAME : TERM, then KILL after 3 s (bounded)
    local p i; p=$(pid_of "$1"); [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for i in $(seq 1 30); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
}

wait_for() {   # wait_for SECONDS CMD... : poll every 0.1 s
    local deadline=$(( $(date +%s%N) + ${1%.*} * 1000000000 )); shift
    while :; do
        "$@" && return 0
        [ "$(date +%s%N)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

lab_cleanup() {  # kill what we started (by pid), delete the namespaces we created
    [ -n "$LAB_DIR" ] && [ -f "$LAB_DIR/pids" ] || return 0
    local p name n
    while read -r p name; do kill -TERM "$p" 2>/dev/null || true; done < "$LAB_DIR/pids"
    sleep 0.2
    while read -r p name; do kill -KILL "$p" 2>/dev/null || true; done < "$LAB_DIR/pids"
    # anything still inside our own namespaces was started by this scenario (e.g. a client)
    while read -r n; do
        for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    done < "$LAB_DIR/netns"
    while read -r n; do ip netns del "$n" 2>/dev/null || true; done < "$LAB_DIR/netns"
    : > "$LAB_DIR/pids"; : > "$LAB_DIR/netns"
}

# ---- firewall examples, applied verbatim ----------------------------------------------------
# apply_example NS FILE VAR=VALUE... : sources Examples/FILE inside the namespace with those variables.
apply_example() {
    local n=$1 file=$2; shift 2
    [ -f "$EXAMPLES/$file" ] || fail "missing Examples/$file"
    if ! ip netns exec "$(ns "$n")" env "$@" sh -ec '. "$1"' sh "$EXAMPLES/$file" \
            > "$LAB_DIR/fw-$n-$file.out" 2>&1; then
        fail "Examples/$file failed in $n: $(tr '\n' ' ' < "$LAB_DIR/fw-$n-$file.out" | cut -c1-300)"
    fi
    { echo "== $n after $file"; ip netns exec "$(ns "$n")" nft list ruleset; } >> "$LAB_DIR/rulesets.txt" 2>&1
}

# ---- peers ----------------------------------------------------------------------------------
mta_start() {  # MTA in the mta namespace on both addresses, port 25, storing into LAB_DIR/mta
    mkdir -p "$LAB_DIR/mta"
    bg_start mta mta "$PYTHON" "$E2E_DIR/mta.py" --dir "$LAB_DIR/mta" --port 25 \
        --listen $M_IP --listen $M_IP6 --lifetime 300
    wait_for 15 grep -q '^ready' "$LAB_DIR/mta.out" || fail "MTA did not start: $(tail -3 "$LAB_DIR/mta.out")"
}

# conf_from_example EXAMPLE OUT key=value... : the example config with those options replaced
# (set_user and pidfile dropped: the lab runs as root and needs no pidfile).
conf_from_example() {
    local src=$EXAMPLES/$1 out=$2 kv key; shift 2
    [ -f "$src" ] || fail "missing Examples/$1"
    local drop="set_user|pidfile"
    for kv in "$@"; do drop="$drop|${kv%%=*}"; done
    grep -Ev "^[[:space:]]*($drop)([[:space:]]|\$)" "$src" > "$out"
    for kv in "$@"; do
        key=${kv%%=*}
        [ -z "${kv#*=}" ] || printf '%s %s\n' "$key" "${kv#*=}" >> "$out"
    done
}

# conf_subst EXAMPLE OUT OLD=NEW... : the example config with each literal string OLD (an address of
# the example's) replaced by NEW everywhere, set_user and pidfile dropped; fails when an OLD does not
# occur (the example changed).  For files with sections, where conf_from_example's appended options
# would land in the last section.
conf_subst() {
    local name=$1 src=$EXAMPLES/$1 out=$2 kv; shift 2
    [ -f "$src" ] || fail "missing Examples/$name"
    grep -Ev '^[[:space:]]*(set_user|pidfile)([[:space:]]|$)' "$src" > "$out"
    for kv in "$@"; do
        OLD=${kv%%=*} NEW=${kv#*=} "$PYTHON" -c 'import os, re, sys
p = sys.argv[1]; t = open(p).read()
# a whole address or word only: 192.0.2.1 is not part of 192.0.2.10
t, n = re.subn(r"(?<![\w.:])" + re.escape(os.environ["OLD"]) + r"(?![\w:]|\.\w)", lambda m: os.environ["NEW"], t)
open(p, "w").write(t); sys.exit(0 if n else 1)' "$out" || fail "Examples/$name no longer has '${kv%%=*}'"
    done
}

# smtpgate_probe_mode CONF : SKIP when the binary does not implement the config's mode yet.
smtpgate_probe_mode() {
    [ -x "$SMTPGATE_BIN" ] || skip "smtpgate binary missing at $SMTPGATE_BIN"
    local err
    if ! err=$("$SMTPGATE_BIN" check-config "$1" 2>&1 >/dev/null); then
        if printf '%s' "$err" | grep -qiE "$UNIMPLEMENTED_RE"; then
            skip "smtpgate check-config: $(printf '%s' "$err" | head -1)"
        fi
        fail "smtpgate check-config rejects the example-based config: $(printf '%s' "$err" | head -1)"
    fi
}

# proxy_start NS CONF : smtpgate run in namespace NS; waits for its start line (SKIP if the mode is
# refused at start-up as not yet implemented).
proxy_start() {
    local n=$1 conf=$2
    smtpgate_probe_mode "$conf"
    PROXY_LOG=$LAB_DIR/proxy.log
    # the lab's own control socket (the default is /run/smtpgate's), before any section of the file
    if ! grep -q '^[[:space:]]*control_path[[:space:]]' "$conf"; then
        local with_control=$LAB_DIR/proxy-run.conf
        { printf 'control_path %s\n' "$LAB_DIR/control.sock"; cat "$conf"; } >"$with_control"
        conf=$with_control
    fi
    bg_start proxy "$n" "$SMTPGATE_BIN" run --config "$conf" --log-file "$PROXY_LOG"
    if ! wait_for 15 proxy_started; then
        local why; why=$( (cat "$LAB_DIR/proxy.out"; cat "$PROXY_LOG" 2>/dev/null) | tail -3 | tr '\n' ' ')
        if printf '%s' "$why" | grep -qiE "$UNIMPLEMENTED_RE"; then
            skip "smtpgate run: $why"
        fi
        fail "smtpgate did not start: $why"
    fi
}
proxy_started() {
    alive proxy || return 1
    grep -q ' start ' "$PROXY_LOG" 2>/dev/null
}

# helper_probe : SKIP unless the smtpgate-helper binary exists and is more than a stub.
helper_probe() {
    [ -x "$HELPER_BIN" ] || skip "smtpgate-helper binary missing at $HELPER_BIN"
    local out; out=$(timeout 5 "$HELPER_BIN" --help 2>&1 || true)
    if printf '%s' "$out" | grep -qiE 'not yet|not implemented'; then
        skip "smtpgate-helper: $(printf '%s' "$out" | head -1)"
    fi
}

# helper_start NAME NS ARGS... : smtpgate-helper in a router namespace; waits until UDP 114 is bound.
helper_start() {
    local name=$1 n=$2; shift 2
    helper_probe
    bg_start "$name" "$n" "$HELPER_BIN" --log-file "$LAB_DIR/$name.log" "$@"
    if ! wait_for 10 helper_bound "$name" "$n"; then
        local why; why=$( (cat "$LAB_DIR/$name.out"; cat "$LAB_DIR/$name.log" 2>/dev/null) | tail -3 | tr '\n' ' ')
        if printf '%s' "$why" | grep -qiE 'not yet|not implemented'; then skip "smtpgate-helper: $why"; fi
        fail "smtpgate-helper did not start: $why"
    fi
}
helper_bound() {
    alive "$1" || return 1
    [ -n "$(ip netns exec "$(ns "$2")" ss -Hlun 'sport = :114' 2>/dev/null)" ]
}

# helper_counters NAME : SIGUSR1 to a running helper; waits (5 s) for its next "counters" line, prints it
helper_counters() {
    local log=$LAB_DIR/$1.log n p; p=$(pid_of "$1")
    [ -n "$p" ] || return 1
    n=$(grep -c ' counters ' "$log" 2>/dev/null || true)
    kill -USR1 "$p" 2>/dev/null || return 1
    wait_for 5 helper_counters_after "$log" "${n:-0}" || return 1
    grep ' counters ' "$log" | tail -1
}
helper_counters_after() { local c; c=$(grep -c ' counters ' "$1" 2>/dev/null || true); [ "${c:-0}" -gt "$2" ]; }

# ---- clamd --------------------------------------------------------------------------------------
# The anti-virus test string (harmless by design); clamd reports it as eicar.com.UNOFFICIAL with the
# one-signature database below.
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'

# clamd_start NS ADDR PORT : a clamd of our own in namespace NS, on TCP ADDR:PORT only (no unix
# socket: the proxy shares no filesystem with it), its database the MD5 of EICAR made now (no
# download).  Waits (30 s) until it answers PING from the proxy's namespace; sets CLAMD_VIRUS to the
# name it gives EICAR.  SKIP when clamd is not installed.
clamd_start() {
    local n=$1 a=$2 port=$3 d=$LAB_DIR/clamd
    command -v clamd >/dev/null && command -v sigtool >/dev/null || skip "clamd is not installed (make deps)"
    mkdir -p "$d/db"
    printf '%s' "$EICAR" > "$d/eicar.com"
    ( cd "$d" && sigtool --md5 eicar.com > db/test.hdb ) || fail "sigtool --md5 failed"
    cat > "$d/clamd.conf" <<CONF
Foreground yes
User root
DatabaseDirectory $d/db
TCPSocket $port
TCPAddr $a
LogFile $d/clamd.log
PidFile $d/clamd.pid
TemporaryDirectory $d
SelfCheck 3600
CONF
    bg_start clamd "$n" clamd --config-file="$d/clamd.conf"
    wait_for 30 clamd_answers prx "$a" "$port" || fail "clamd did not answer PING on $a:$port: $(tail -2 "$d/clamd.log" "$LAB_DIR/clamd.out" 2>/dev/null | tr '\n' ' ')"
    local ans; ans=$(clamd_ask prx "$a" "$port" INSTREAM "$d/eicar.com") || true
    case $ans in "stream: "*" FOUND") CLAMD_VIRUS=${ans#stream: }; CLAMD_VIRUS=${CLAMD_VIRUS% FOUND};;
                 *) fail "clamd did not detect EICAR: '$ans'";; esac
}
clamd_answers() { alive clamd && [ "$(clamd_ask "$@" PING 2>/dev/null)" = PONG ]; }

# clamd_ask NS ADDR PORT COMMAND [FILE] : one clamd command from namespace NS (FILE sent with
# INSTREAM); prints the answer.  Bounded: 3 s per socket operation, 64 KiB of answer.
clamd_ask() {
    ip netns exec "$(ns "$1")" "$PYTHON" - "$2" "$3" "$4" "${5:-}" <<'EOF'
import socket, struct, sys
host, port, cmd, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with socket.create_connection((host, port), timeout=3) as s:
    s.sendall(b"z" + cmd.encode() + b"\0")
    if path:
        data = open(path, "rb").read()
        s.sendall(struct.pack(">I", len(data)) + data + struct.pack(">I", 0))
    out = b""
    while not out.endswith(b"\0") and len(out) < 65536:
        chunk = s.recv(4096)
        if not chunk:
            break
        out += chunk
print(out.rstrip(b"\0").decode("latin-1"))
EOF
}

make_key() {   # make_key FILE [CONTENT] : a key file with mode 0600
    (umask 077; printf '%s\n' "${2:-$(head -c 24 /dev/urandom | base64)}" > "$1")
    chmod 600 "$1"
}

# ---- the client -----------------------------------------------------------------------------
# make_message FILE TAG : a CRLF message with a unique token, long enough to span packets.
make_message() {
    local f=$1 tag=$2 i
    {
        printf 'From: Alice <alice@customer.test>\r\nTo: Bob <bob@example.test>\r\n'
        printf 'Subject: lab %s\r\nMessage-ID: <%s@lab.test>\r\n\r\n' "$tag" "$tag"
        printf 'token %s\r\n' "$tag"
        printf '.leading dot line, stuffed on the wire\r\n'
        for i in $(seq 1 60); do printf 'line %03d %s\r\n' "$i" "$(printf 'x%.0s' $(seq 1 70))"; done
        printf 'end %s\r\n' "$tag"
    } > "$f"
}

# send_mail NS HOST MSGFILE [client.py options] : prints the client's result line
send_mail() {
    local n=$1 host=$2 msg=$3; shift 3
    timeout 40 ip netns exec "$(ns "$n")" "$PYTHON" "$E2E_DIR/client.py" "$host" "${SEND_PORT:-25}" "$msg" "$@" 2>&1 | tail -1
}

# ---- plain TCP peers ([forward] scenarios) ---------------------------------------------------
# tcp_server_start NAME NS ADDR:PORT... : tcppeer.py's banner+echo server in NS, its files in LAB_DIR/NAME
# (connections.log, conn-N.in); waits (10 s) until every socket listens.  tcp_conns NAME: connections seen.
tcp_server_start() {
    local name=$1 n=$2 ep args=(); shift 2
    for ep in "$@"; do args+=(--listen "$ep"); done
    mkdir -p "$LAB_DIR/$name"
    bg_start "$name" "$n" "$PYTHON" "$E2E_DIR/tcppeer.py" serve --dir "$LAB_DIR/$name" "${args[@]}" --lifetime 300
    wait_for 10 grep -q '^ready' "$LAB_DIR/$name.out" || fail "TCP server $name did not start: $(tail -3 "$LAB_DIR/$name.out" | tr '\n' ' ')"
}
tcp_conns() { grep -c '^connect ' "$LAB_DIR/$1/connections.log" 2>/dev/null || true; }

# tcp_talk NS HOST PORT SENDFILE OUTFILE [--source ADDR] [--timeout S] : one client connection
# (send, half-close, read to EOF); prints tcppeer.py's result line (bounded: 10 s by default)
tcp_talk() {
    local n=$1 host=$2 port=$3 send=$4 out=$5; shift 5
    timeout 30 ip netns exec "$(ns "$n")" "$PYTHON" "$E2E_DIR/tcppeer.py" talk "$host" "$port" \
        --send "$send" --out "$out" "$@" 2>&1 | tail -1
}
# talk_field LINE KEY : a key=value of a tcp_talk result line
talk_field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# ---- assertions -----------------------------------------------------------------------------
expect_ok() {  # expect_ok RESULTLINE
    case $1 in ok\ 250*) ;; *) fail "client: expected 250 for the message, got: $1";; esac
}
expect_4xx() { # expect_4xx RESULTLINE : a clean temporary failure (reply code 4xx)
    case $1 in fail\ *\ 4[0-9][0-9]\ *) ;; *) fail "client: expected a 4xx reply, got: $1";; esac
}

# mta_has_message MSGFILE : exactly one stored message, byte-identical to MSGFILE; prints its .env
mta_has_message() {
    local n; n=$(ls "$LAB_DIR/mta"/msg-*.eml 2>/dev/null | wc -l)
    [ "$n" = 1 ] || fail "MTA stored $n messages, expected 1"
    cmp -s "$1" "$LAB_DIR/mta/msg-1.eml" || fail "stored message differs from the one sent ($(cmp "$1" "$LAB_DIR/mta/msg-1.eml" 2>&1 | head -1))"
    cat "$LAB_DIR/mta/msg-1.env"
}
mta_nothing() {  # the MTA saw no connection and stored nothing
    local n; n=$(ls "$LAB_DIR/mta"/msg-*.eml 2>/dev/null | wc -l)
    [ "$n" = 0 ] || fail "MTA stored $n messages, expected none"
    [ ! -s "$LAB_DIR/mta/connections.log" ] || fail "MTA saw a connection: $(head -1 "$LAB_DIR/mta/connections.log")"
}

# Log helpers.  A text log line is "TS smtpgate[PID]: LEVEL EVENT key=value ..."; IPv4 clients of an
# IPv6 wildcard listener appear as [::ffff:a.b.c.d]:port, which log_norm turns into a.b.c.d:port.
log_norm() { sed -E 's/\[::ffff:([0-9.]+)\]/\1/g' "$1" 2>/dev/null; }

# log_wait EVENT REGEX... : wait (5 s) for a line of that event matching every REGEX; prints it
log_wait() {
    local ev=$1; shift
    wait_for 5 log_match "$ev" "$@" >/dev/null || return 1
    log_match "$ev" "$@"
}
log_match() {
    local ev=$1 line; shift
    while IFS= read -r line; do
        case $line in *" $ev "*) ;; *) continue;; esac
        local ok=1 re
        for re in "$@"; do printf '%s\n' "$line" | grep -qE -- "$re" || { ok=0; break; }; done
        [ $ok = 1 ] && { printf '%s\n' "$line"; return 0; }
    done < <(log_norm "$PROXY_LOG")
    return 1
}
expect_log() { # expect_log EVENT REGEX... : fail with the log's tail when no such line appears
    log_wait "$@" >/dev/null || fail "proxy log has no '$1' line matching $(printf "'%s' " "${@:2}"); log tail: $(tail -3 "$PROXY_LOG" 2>/dev/null | cut -c1-250 | tr '\n' '|')"
}
no_log() {     # no_log EVENT : no line of that event
    ! log_match "$1" >/dev/null || fail "proxy log unexpectedly has: $(log_match "$1" | head -1 | cut -c1-250)"
}

# conntrack_has NS REGEX... : a conntrack line in NS matching every regex; prints it
conntrack_has() {
    local n=$1 line; shift
    while IFS= read -r line; do
        local ok=1 re
        for re in "$@"; do printf '%s\n' "$line" | grep -qE -- "$re" || { ok=0; break; }; done
        [ $ok = 1 ] && { printf '%s\n' "$line"; return 0; }
    done < <(ip netns exec "$(ns "$n")" conntrack -L -p tcp 2>/dev/null; ip netns exec "$(ns "$n")" conntrack -L -f ipv6 -p tcp 2>/dev/null)
    return 1
}

# mode_skip_if_unimplemented : after a failure, a proxy log that says the mode is not implemented
# turns the FAIL into a SKIP (lets make test stay green while a mode is being written).
mode_skip_if_unimplemented() {   # [CLIENT_RESULT]
    local l; l=$( { printf '%s\n' "${1:-}"; sed 's/\\x20/ /g' "$PROXY_LOG" 2>/dev/null; } | grep -iE "$UNIMPLEMENTED_RE" | head -1)
    [ -z "$l" ] || skip "proxy says: $(printf '%s' "$l" | cut -c1-200)"
}

# postfix_start : a private Postfix instance (own config and queue under LAB_DIR/pf) in the mta
# namespace, listening on M_IP:25, trusting XCLIENT from XCLIENT_HOSTS, discarding what it accepts.
# Its log is LAB_DIR/pf/maillog.  SKIP when Postfix is not installed.
postfix_start() {
    command -v postfix >/dev/null || skip "postfix is not installed"
    local d=$LAB_DIR/pf
    mkdir -p "$d/etc" "$d/data" "$d/spool"
    chmod 755 "$(dirname "$LAB_DIR")" "$LAB_DIR" "$d"      # postfix's daemons run as user postfix
    chown postfix "$d/data"
    awk 'BEGIN { OFS = "  " } /^[a-z]/ && NF >= 8 { $5 = "n" } { print }' /etc/postfix/master.cf > "$d/etc/master.cf"
    cat > "$d/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/data
myhostname = mta.lab.test
mydomain = lab.test
myorigin = lab.test
inet_interfaces = $M_IP
inet_protocols = ipv4
mynetworks = 10.77.0.0/16
mydestination =
relay_domains = example.test
default_transport = discard:lab
relay_transport = discard:lab
smtpd_authorized_xclient_hosts = ${XCLIENT_HOSTS:-$P_IP}
smtpd_peername_lookup = no
disable_dns_lookups = yes
maillog_file = $d/maillog
maillog_file_prefixes = /tmp, /var
alias_maps =
alias_database =
smtputf8_enable = no
biff = no
CF
    # postfix reports errors on a terminal only: give it one
    if ! script -qec "ip netns exec $(ns mta) postfix -c $d/etc start" /dev/null > "$LAB_DIR/postfix.out" 2>&1; then
        fail "postfix did not start: $(tr '\r\n' '  ' < "$LAB_DIR/postfix.out" | cut -c1-200)"
    fi
    wait_for 15 postfix_listening || fail "postfix does not listen: $(tail -2 "$d/maillog" 2>/dev/null | tr '\n' ' ')"
}
postfix_listening() { [ -n "$(ip netns exec "$(ns mta)" ss -Hltn "sport = :25" 2>/dev/null)" ]; }
