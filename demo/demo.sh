#!/usr/bin/env bash
# The NAT lab demo of the split setup (as root): a client in its own network namespace sends mail "to the
# MTA's address, port 25"; its router DNATs the connection to smtpgate (mode remote-udp) on another host
# and SNATs it to its own address; smtpgate asks the smtpgate-helper on the router who the client really
# was and where it was going, and relays to the MTA.  Prints the lab, the router's conntrack entry, the
# helper's answer, the proxy's session log and the messages as the MTA stored them.  Then it turns on
# content scanning with a reload (SIGHUP): clamd on a scanner host of the proxy's network (TCP, no shared
# filesystem) and the NAT header; one clean and one EICAR message show the replies, the scan log and the
# header naming the real client (skipped when clamd is not installed).  Finally it removes every
# namespace and process it created (also on Ctrl-C).
#
# Built on the e2e lab (Tests/e2e/lib.sh): namespaces, the Examples/ firewall rules applied verbatim,
# the aiosmtpd MTA.  Only addresses inside its own namespaces (10.77.0.0/16, fd77::/48); no default route.
# Binaries: SMTPGATE_BIN, HELPER_BIN (default .build/debug/smtpgate, .build/debug/smtpgate-helper).
set -eEu
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/Tests/e2e/lib.sh"

if [ "$(id -u)" != 0 ]; then echo "demo: needs root (it creates network namespaces)" >&2; exit 1; fi
for tool in ip iptables ip6tables conntrack ss swaks "$PYTHON"; do
    command -v "$tool" >/dev/null || { echo "demo: $tool is missing (make deps)" >&2; exit 1; }
done
for bin in "$SMTPGATE_BIN" "$HELPER_BIN"; do
    [ -x "$bin" ] || { echo "demo: $bin is missing (make build)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/smtpgate-demo.XXXXXX)
lab_init "sgdemo$$$(printf %04x $((RANDOM % 65536)))" "$WORK"
demo_cleanup() {
    local rc=$? left n p
    trap - EXIT ERR
    trap '' INT TERM       # a second Ctrl-C must not cut the cleanup short
    lab_cleanup
    # a namespace made just as Ctrl-C came may not be on lab_cleanup's list yet: ours by name
    for n in $(ip netns list | awk -v t="$LAB_TAG-" 'index($1, t) == 1 { print $1 }'); do
        for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$n" 2>/dev/null || true
    done
    left=$(ip netns list | awk -v t="$LAB_TAG-" 'index($1, t) == 1' | wc -l)
    rm -rf "$WORK"
    if [ "$rc" = 0 ]; then
        echo
        echo "== Cleaned up: processes stopped, namespaces deleted ($left of the demo's left), $WORK removed"
    fi
    exit "$rc"
}
trap demo_cleanup EXIT
trap '[ -s "$LAB_DIR/reason" ] || echo "demo: failed (line $LINENO): $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

section() { printf '\n== %s\n' "$*"; }
indent() { sed -e 's/\r$//' -e 's/^./   &/'; }

# ---- the lab --------------------------------------------------------------------------------------
SCAN=no topo=()
if command -v clamd >/dev/null && command -v sigtool >/dev/null; then SCAN=yes topo=(scanner); fi
lab_topology "${topo[@]}"
apply_example rtr firewall-split-router.iptables.sh CUSTOMER_IF=in0 PROXY_IP=$P_IP ROUTER_IP=$R_OUT \
    PROXY_IP6=$P_IP6 ROUTER_IP6=$R_OUT6 PROXY_PORT=$PROXY_PORT
apply_example prx firewall-split-proxy.iptables.sh ROUTER_NETS="$R_OUT/32" ROUTER_NETS6="$R_OUT6/128" \
    PROXY_PORT=$PROXY_PORT
mta_start
make_key "$LAB_DIR/helper.key"
helper_start helper rtr --listen $R_OUT --listen "[$R_OUT6]" --allow $P_IP/32 --allow $P_IP6/128 \
    --key-file "$LAB_DIR/helper.key"
conf_from_example smtpgate-split.conf "$LAB_DIR/proxy.conf" proxy_name=proxy.lab.test bind_address=:: \
    timeout_lookup=2 remote_udp_retries=2 timeout_connect=5 remote_udp_key_file="$LAB_DIR/helper.key" \
    state_store="sqlite:$LAB_DIR/state/state.db" control_path="$LAB_DIR/control.sock" admin_listen=127.0.0.1:9125
mkdir -p "$LAB_DIR/state"
proxy_start prx "$LAB_DIR/proxy.conf"

section "1. The lab: $([ $SCAN = yes ] && echo five || echo four) network namespaces, routes only within 10.77.0.0/16 and fd77::/48"
row() { printf '%-8s%-*s  %-5s%-12s%-17s%s\n' "$1" "$(( ${#LAB_TAG} + 4 ))" "$2" "$3" "$4" "$5" "$6"; }
{
    row client "$(ns cli)" eth0 $C_IP $C_IP6 "sends mail to the MTA's address, port 25"
    row router "$(ns rtr)" in0 $R_IN $R_IN6 "customer side"
    row "" "" out0 $R_OUT $R_OUT6 "proxy side; smtpgate-helper on UDP 114 (v2 key)"
    row "" "" mta0 $R_MTA $R_MTA6 "MTA side"
    row proxy "$(ns prx)" br0 $P_IP $P_IP6 "smtpgate, mode remote-udp, port $PROXY_PORT"
    row MTA "$(ns mta)" eth0 $M_IP $M_IP6 "aiosmtpd on port 25, stores every message"
    [ $SCAN = no ] || row scanner "$(ns scn)" eth0 $S_IP $S_IP6 "clamd on TCP $CLAMD_PORT (part 6), on the proxy's network"
    cat <<EOF

client -> router: DNAT tcp/25 to the proxy, SNAT to $R_OUT -> smtpgate -> (via the router) -> MTA
smtpgate asks the helper at the connection's source ($R_OUT:114) for the real client and destination.
Router NAT rules (Examples/firewall-split-router.iptables.sh, applied as it is):
EOF
} | indent
{ nsx rtr iptables -t nat -S; nsx rtr ip6tables -t nat -S; } | grep -- '^-A' | sed 's/^/  /' | indent

# ---- a session held open: conntrack and the helper ------------------------------------------------
# Client 1 (smtplib) connects to the MTA's address and says EHLO, then waits for $LAB_DIR/go before it
# sends one message to two recipients, the second of which the MTA refuses.
cat > "$LAB_DIR/held.py" <<'PY'
import os, smtplib, sys, time
host, go = sys.argv[1], sys.argv[2]
s = smtplib.SMTP(host, 25, local_hostname="client1.customer.test", timeout=15)
s.ehlo()
ip, port = s.sock.getsockname()[:2]
print(f"open {ip} {port}", flush=True)
deadline = time.time() + 20
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
msg = (b"From: Alice <alice@customer.test>\r\nTo: Bob <bob@example.test>, <nobody@example.test>\r\n"
       b"Subject: held open while the demo looked at the router\r\n\r\n"
       b"This session stayed open while conntrack and the helper were asked about it.\r\n"
       b".A line that starts with a dot (stuffed on the wire, stored as is).\r\n")
def say(what, reply):
    print(f"{what:<32} {reply[0]} {reply[1].decode(errors='replace')}", flush=True)
say("MAIL FROM:<alice@customer.test>", s.mail("alice@customer.test"))
say("RCPT TO:<bob@example.test>", s.rcpt("bob@example.test"))
say("RCPT TO:<nobody@example.test>", s.rcpt("nobody@example.test"))
say("DATA", s.data(msg))
s.quit()
print("done", flush=True)
PY
bg_start held cli "$PYTHON" "$LAB_DIR/held.py" $M_IP "$LAB_DIR/go"
wait_for 10 grep -q '^open ' "$LAB_DIR/held.out" || fail "client 1 did not get through: $(tail -2 "$LAB_DIR/held.out")"
read -r _ cip cport < <(grep '^open ' "$LAB_DIR/held.out")
ct=$(conntrack_has rtr "src=$cip dst=$M_IP sport=$cport dport=25 " "src=$P_IP dst=$R_OUT sport=$PROXY_PORT ") \
    || fail "router conntrack has no DNAT+SNAT entry for $cip:$cport"
nport=$(printf '%s\n' "$ct" | grep -oE 'dport=[0-9]+' | tail -1 | cut -d= -f2)

section "2. The router's conntrack table, while client 1's session is open (conntrack -L in $(ns rtr))"
echo "   client 1 ($(ns cli)) connected to $M_IP:25 from $cip:$cport, said EHLO, and waits"
echo "   \$ conntrack -L; conntrack -L -f ipv6"
{ nsx rtr conntrack -L 2>/dev/null; nsx rtr conntrack -L -f ipv6 2>/dev/null; } | indent
echo
echo "   The entry for client 1 (src=$cip sport=$cport), in its two directions:"
printf '     %-46s %s\n' "original: $cip:$cport -> $M_IP:25" "what the client sent" \
    "reply:    $P_IP:$PROXY_PORT -> $R_OUT:$nport" "what comes back: DNATed to the proxy, SNATed to the router"
echo "   (the other TCP entry is the proxy's own connection to the MTA, the UDP one its query to the helper)"

section "3. The helper's answer (smtpgate-helper on $R_OUT:114 in $(ns rtr))"
echo "   smtpgate sees the connection as $R_OUT:$nport -> $P_IP:$PROXY_PORT and asked the helper about it."
echo "   The same question, asked from the proxy's namespace with Tests/e2e/query.py and the v2 key:"
echo "   \$ query.py $R_OUT  $R_OUT $nport  $P_IP $PROXY_PORT  --key helper.key"
ans=$(nsx prx "$PYTHON" "$E2E_DIR/query.py" $R_OUT $R_OUT "$nport" $P_IP $PROXY_PORT --key "$LAB_DIR/helper.key")
echo "   $ans"
[ "$ans" = "found $cip:$cport $M_IP:25" ] || fail "helper answered '$ans', expected 'found $cip:$cport $M_IP:25'"
echo "   -> the real client $cip:$cport and the real destination $M_IP:25"
echo "   A connection the router does not know (port 1):"
echo "   \$ query.py $R_OUT  $R_OUT 1  $P_IP $PROXY_PORT  --key helper.key"
nsx prx "$PYTHON" "$E2E_DIR/query.py" $R_OUT $R_OUT 1 $P_IP $PROXY_PORT --key "$LAB_DIR/helper.key" | indent
helper_counters helper >/dev/null || fail "the helper logged no counters"
echo "   The helper's log (start, and its counters on SIGUSR1: the proxy's query and the two above):"
indent < "$LAB_DIR/helper.log"
echo
echo "   What the proxy shows of it: \$ smtpgate status --config proxy.conf (its control socket)"
status=$("$SMTPGATE_BIN" status --config "$LAB_DIR/proxy.conf" 2>&1) || fail "smtpgate status failed: $status"
printf '%s\n' "$status" | indent
printf '%s\n' "$status" | grep -q " relay .* $cip:$cport " || fail "smtpgate status does not list client 1 ($cip:$cport)"

# ---- the session goes on; two more messages --------------------------------------------------------
section "4. Mail through the proxy, and the proxy's session log"
touch "$LAB_DIR/go"
wait_for 15 grep -q '^done' "$LAB_DIR/held.out" || fail "client 1 did not finish: $(tail -2 "$LAB_DIR/held.out")"
echo "   client 1 (smtplib, held-open session) goes on:"
grep -v -e '^open ' -e '^done' "$LAB_DIR/held.out" | sed 's/^/  /' | indent
swaks_send() {   # swaks_send LABEL SERVER swaks-options...
    local label=$1 server=$2 out; shift 2
    out=$(nsx cli swaks --server "$server" --port 25 --helo client2.customer.test --from carol@customer.test \
        --to dave@example.test --timeout 15 "$@" 2>&1) || fail "swaks ($label) failed: $(printf '%s\n' "$out" | tail -3)"
    echo "   $label: $(printf '%s\n' "$out" | grep -A1 -E '^ -> \.$' | sed -n 's/^ *<- *//p' | head -1)"
}
swaks_send "client 2 (swaks, IPv4, to $M_IP:25)" $M_IP \
    --header 'Subject: second message' --body 'Sent with swaks to the MTA address over IPv4.'
swaks_send "client 3 (swaks, IPv6, to [$M_IP6]:25)" $M_IP6 -6 --helo client3.customer.test --from erin@customer.test --to frank@example.test \
    --header 'Subject: third message' --body 'Sent with swaks to the MTA address over IPv6.'
for c in "$cip:$cport" "$C_IP:[0-9]+" "\\[$C_IP6\\]:[0-9]+"; do
    log_wait close "client=$c " >/dev/null || fail "no close line for client $c in the proxy log"
done
echo
echo "   The proxy's log ($(ns prx)): each session opens with the real client (client=) next to the router's"
echo "   NAT source (nat_source=), then one transaction line per message and a close line:"
sed -e 's/^/   /' "$PROXY_LOG"

section "5. The messages as the MTA stored them (envelope, then the message)"
for env in "$LAB_DIR"/mta/msg-*.env; do
    echo "   --- $(basename "${env%.env}.eml"): $(cat "$env")"
    sed -e 's/\r$//' -e 's/^/   | /' "${env%.env}.eml"
done

# ---- content scanning, turned on by a reload ----------------------------------------------------------
section "6. Content scanning: clamd on the scanner host, turned on with a reload (SIGHUP)"
if [ $SCAN = no ]; then
    echo "   clamd is not installed: this part is skipped (make deps installs clamav-daemon)."
    exit 0
fi
reloaded() { [ "$(grep -c ' reload .*result=' "$PROXY_LOG" || true)" -gt "$1" ]; }
closed_since() { [ "$(tail -n +"$(($1 + 1))" "$PROXY_LOG" | grep -c ' close ' || true)" -ge "$2" ]; }
clamd_start scn $S_IP $CLAMD_PORT
echo "   clamd ($(ns scn)) listens on $S_IP:$CLAMD_PORT only; its database is one signature made just now:"
echo "   \$ sigtool --md5 eicar.com > test.hdb   (the EICAR anti-virus test file; clamd calls it $CLAMD_VIRUS)"
cp "$LAB_DIR/proxy.conf" "$LAB_DIR/proxy.conf.before"
cat >> "$LAB_DIR/proxy.conf" <<CONF
antivirus_type clamd
antivirus_path $S_IP:$CLAMD_PORT
spool_path $LAB_DIR/spool
nat_header_type generic
abuse abuse@lab.test
lock_on virus
lock_duration 600
CONF
echo "   Added to the proxy's configuration (clamd over TCP: the proxy and clamd share no filesystem):"
diff "$LAB_DIR/proxy.conf.before" "$LAB_DIR/proxy.conf" | sed -n 's/^> /     /p'
reloads=$(grep -c ' reload .*result=' "$PROXY_LOG" || true)
lines=$(wc -l < "$PROXY_LOG")
kill -HUP "$(pid_of proxy)"
wait_for 10 reloaded "$reloads" || fail "the proxy did not reload: $(tail -2 "$PROXY_LOG" | tr '\n' ' ')"
grep ' reload .*result=' "$PROXY_LOG" | tail -1 | grep -q 'result=ok' || fail "reload failed: $(grep ' reload ' "$PROXY_LOG" | tail -1)"
[ -d "$LAB_DIR/spool" ] || fail "the reload did not create spool_path $LAB_DIR/spool"
echo "   \$ kill -HUP <smtpgate>; new sessions scan, the proxy created spool_path $(basename "$LAB_DIR")/spool"
stored=$(ls "$LAB_DIR"/mta/msg-*.eml | wc -l)
printf 'This attachment is a perfectly harmless text file.\r\n' > "$LAB_DIR/notes.txt"
echo
echo "   Two messages from the client ($C_IP) with swaks, the same but for the attachment:"
swaks_try() {    # swaks_try LABEL swaks-options... : prints the reply to the final dot, refusals included
    local label=$1 out; shift
    out=$(nsx cli swaks --server $M_IP --port 25 --helo client4.customer.test --from alice@customer.test \
        --to bob@example.test --timeout 15 --body 'Hello Bob, the file is attached.' "$@" 2>&1) || true
    echo "   $label: $(printf '%s\n' "$out" | grep -A1 -E '^ -> \.$' | sed -n 's/^ *<[-*]* *//p' | head -1)"
}
swaks_try "clean (notes.txt attached)" --header 'Subject: scanned, clean' --attach @"$LAB_DIR/notes.txt"
swaks_try "virus (eicar.com attached)" --header 'Subject: scanned, virus' --attach @"$LAB_DIR/clamd/eicar.com"
echo "   (no enhanced code such as 5.7.1 in the refusal: this MTA does not advertise ENHANCEDSTATUSCODES)"
log_wait transaction "scan=virus " >/dev/null || fail "no transaction line for the virus in the proxy log"
wait_for 5 closed_since "$lines" 2 || fail "the two sessions did not close: $(tail -2 "$PROXY_LOG" | tr '\n' ' ')"
echo
echo "   The proxy's log from the reload on: one scan line per message (scanner, result, time, size, virus),"
echo "   the transaction line (scan=; the infected one result=aborted: the MTA never saw its end):"
tail -n +"$((lines + 1))" "$PROXY_LOG" | sed -e 's/^/   /'
now=$(ls "$LAB_DIR"/mta/msg-*.eml | wc -l)
[ "$now" = $((stored + 1)) ] || fail "the MTA stored $((now - stored)) messages in part 6, expected 1"
newest=$LAB_DIR/mta/msg-$now.eml
echo
echo "   The MTA stored only the clean message, $(basename "$newest"); its first lines are the NAT header naming"
echo "   the real client (the MTA itself saw only the proxy: $(grep -oE 'peer=[^ ]+' "${newest%.eml}.env")):"
sed -e 's/\r$//' -e 's/^/   | /' "$newest" | head -12
echo "   | ..."
grep -q "^X-Nat-Received: from \[$C_IP\]:" "$newest" || fail "the stored message has no NAT header naming $C_IP"

section "7. Locks: the client that sent the virus is locked (lock_on virus), per real client behind the NAT"
lines=$(wc -l < "$PROXY_LOG")
out=$(nsx cli swaks --server $M_IP --port 25 --helo client5.customer.test --from alice@customer.test \
    --to bob@example.test --timeout 15 --quit-after connect 2>&1) || true
echo "   client $C_IP connects again: $(printf '%s\n' "$out" | sed -n 's/^ *<\*\{0,3\} *\(554 .*\)/\1/p' | head -1)"
printf '%s\n' "$out" | grep -q "554 .*your address is locked (virus)" || fail "the locked client was not refused: $out"
log_wait reject "reason=locked " >/dev/null || fail "no reject line for the locked client"
echo "   The proxy's log: the lock (at the virus) and the refusals after it:"
grep -E ' (lock|reject) ' "$PROXY_LOG" | sed -e 's/^/   /'
echo "   \$ smtpgate locks list --config proxy.conf"
"$SMTPGATE_BIN" locks list --config "$LAB_DIR/proxy.conf" | sed -e 's/^/   /'
echo "   \$ smtpgate locks remove $C_IP --config proxy.conf"
"$SMTPGATE_BIN" locks remove "$C_IP" --config "$LAB_DIR/proxy.conf" | sed -e 's/^/   /'
swaks_try "client $C_IP once unlocked" --header 'Subject: unlocked'

section "8. Metrics: what Prometheus scrapes from admin_listen 127.0.0.1:9125 (in $(ns prx); also / and /healthz)"
metrics=$(nsx prx "$PYTHON" -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9125/metrics", timeout=5).read().decode(), end="")') \
    || fail "/metrics did not answer"
echo "   \$ curl -s http://127.0.0.1:9125/metrics | grep -v -e '^#' -e ' 0\$'"
printf '%s\n' "$metrics" | grep -v -e '^#' -e ' 0$' -e ' 0\.0$' -e '_bucket{' | indent
printf '%s\n' "$metrics" | grep -qE '^smtpgate_transactions_total\{listener="main",reply_class="2xx"\} [1-9]' \
    || fail "the metrics do not count the mail above"
