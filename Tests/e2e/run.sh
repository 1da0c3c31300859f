#!/usr/bin/env bash
# SMTPGate NAT lab: end-to-end scenarios in network namespaces with real netfilter NAT and conntrack,
# the firewall rules of Examples/ applied verbatim, aiosmtpd as the MTA, smtplib as the client.
#
#   bash Tests/e2e/run.sh [-v] [NAME_REGEX]     (as root)
#
# One line per scenario (PASS name / FAIL name: why / SKIP name: why), then "N passed, M failed, K skipped".
# A scenario whose feature the binaries do not implement yet is skipped with the reason found by probing.
# -v prints each failed scenario's own log.  Files of the run stay in $E2E_KEEP (default: removed).
# Binaries: SMTPGATE_BIN (default .build/debug/smtpgate), HELPER_BIN (default .build/debug/smtpgate-helper).
set -u
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$E2E_DIR/lib.sh"

# ============================ scenarios ==========================================================
# Each runs in its own process with its own namespaces (LAB_TAG) and files (LAB_DIR).

router_rules() {  # router_rules NS iptables|nft IN_IF ROUTER_IP ROUTER_IP6
    apply_example "$1" "firewall-split-router.$2.sh" CUSTOMER_IF="$3" PROXY_IP=$P_IP ROUTER_IP="$4" \
        PROXY_IP6=$P_IP6 ROUTER_IP6="$5" PROXY_PORT=$PROXY_PORT
}

# fixed mode through the router's DNAT+SNAT (works with the proxy as it is today)
sc_fixed() {      # sc_fixed iptables|nft 4|6
    local fw=$1 fam=$2 dst=$M_IP snat=$R_OUT proxy=$P_IP bind=0.0.0.0 cip=$C_IP
    if [ "$fam" = 6 ]; then dst=$M_IP6 snat=$R_OUT6 proxy=$P_IP6 bind=:: cip=$C_IP6; fi
    lab_topology
    router_rules rtr "$fw" in0 $R_OUT $R_OUT6
    mta_start
    conf_from_example smtpgate-fixed.conf "$LAB_DIR/proxy.conf" fixed_server=$dst bind_address=$bind \
        timeout_connect=5
    proxy_start prx "$LAB_DIR/proxy.conf"
    make_message "$LAB_DIR/msg" "fixed-$fw-$fam-$$"
    local res; res=$(send_mail cli "$dst" "$LAB_DIR/msg"); log "client: $res"
    expect_ok "$res"
    local env; env=$(mta_has_message "$LAB_DIR/msg") || exit 1
    case $env in *"peer=$(fmt_ip "$proxy"):"*) ;; *) fail "MTA peer is not the proxy: $env";; esac
    local ct; ct=$(conntrack_has rtr "src=$cip dst=$dst " "dport=25 src=$proxy dst=$snat sport=$PROXY_PORT ") \
        || fail "router conntrack has no DNAT+SNAT entry $cip -> $dst:25 / $proxy:$PROXY_PORT -> $snat"
    log "conntrack: $ct"
    local nat_port; nat_port=$(printf '%s\n' "$ct" | grep -oE "dport=[0-9]+" | tail -1 | cut -d= -f2)
    expect_log open "client=$(re_ip "$snat"):$nat_port " "local=$(re_ip "$proxy"):$PROXY_PORT " "dest=$(re_ip "$dst"):25( |\$)"
    expect_log transaction "client=$(re_ip "$snat"):$nat_port " "trans=1 " "result=250"
    expect_log close "client=$(re_ip "$snat"):$nat_port " "reason=quit"
}

# split mode: helper on the router, proxy in mode remote-udp (v2 with a key, or legacy 0x0402)
sc_split() {      # sc_split iptables|nft 4|6 v2|legacy
    local fw=$1 fam=$2 proto=$3 dst=$M_IP cip=$C_IP
    if [ "$fam" = 6 ]; then dst=$M_IP6; cip=$C_IP6; fi
    lab_topology evil
    router_rules rtr "$fw" in0 $R_OUT $R_OUT6
    apply_example prx "firewall-split-proxy.$fw.sh" ROUTER_NETS="$R_OUT/32" ROUTER_NETS6="$R_OUT6/128" PROXY_PORT=$PROXY_PORT
    mta_start
    local opts=()
    if [ "$proto" = v2 ]; then
        make_key "$LAB_DIR/helper.key"
        # the helper's metrics on the router's own loopback (--admin-listen), read after the mail below
        helper_start helper rtr --listen $R_OUT --listen "[$R_OUT6]" --allow $P_IP/32 --allow $P_IP6/128 \
            --key-file "$LAB_DIR/helper.key" --admin-listen 127.0.0.1:9126
        opts=(remote_udp_key_file="$LAB_DIR/helper.key")
    else
        helper_start helper rtr --listen $R_OUT --allow $P_IP/32 --legacy-secret 4242
        opts=(remote_udp_key_file= remote_udp_secret=4242)
    fi
    conf_from_example smtpgate-split.conf "$LAB_DIR/proxy.conf" bind_address=:: timeout_lookup=2 \
        remote_udp_retries=2 timeout_connect=5 "${opts[@]}"
    proxy_start prx "$LAB_DIR/proxy.conf"
    make_message "$LAB_DIR/msg" "split-$fw-$fam-$proto-$$"
    local res; res=$(send_mail cli "$dst" "$LAB_DIR/msg"); log "client: $res"
    case $res in ok*) ;; *) mode_skip_if_unimplemented "$res";; esac
    expect_ok "$res"
    local env; env=$(mta_has_message "$LAB_DIR/msg") || exit 1
    case $env in *"peer=$(fmt_ip "$([ "$fam" = 6 ] && echo $P_IP6 || echo $P_IP)"):"*) ;; *) fail "MTA peer is not the proxy: $env";; esac
    local ct; ct=$(conntrack_has rtr "src=$cip dst=$dst " "dport=25 src=$([ "$fam" = 6 ] && echo $P_IP6 || echo $P_IP) ") \
        || fail "router conntrack has no entry for the client's connection"
    local cport; cport=$(printf '%s\n' "$ct" | grep -oE "sport=[0-9]+" | head -1 | cut -d= -f2)
    # the proxy logs the real client (address and port) and the real destination
    expect_log open "client=$(re_ip "$cip"):$cport " "dest=$(re_ip "$dst"):25( |\$)"
    expect_log transaction "client=$(re_ip "$cip"):$cport " "dest=$(re_ip "$dst"):25 " "result=250"
    if [ "$proto" = v2 ]; then
        local metrics; metrics=$(nsx rtr python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9126/metrics", timeout=5).read().decode(), end="")') \
            || fail "the helper's /metrics did not answer"
        printf '%s\n' "$metrics" | grep -qE '^smtpgate_helper_queries_total\{result="found"\} [1-9]' \
            || fail "the helper's metrics do not count the lookup: $(printf '%s' "$metrics" | grep helper_queries)"
        printf '%s\n' "$metrics" | grep -qE '^smtpgate_helper_lookup_duration_seconds_count [1-9]' || fail "no lookup latency in the helper's metrics"
        printf '%s\n' "$metrics" | promtool check metrics >/dev/null 2>&1 || fail "the helper's /metrics fails promtool check metrics"
    fi
    # the proxy-side example keeps everybody but the routers away from the proxy's port
    local direct; direct=$(tcp_probe evil $P_IP $PROXY_PORT)
    [ "$direct" = refused ] || fail "a third host reached the proxy port directly ($direct) despite firewall-split-proxy.$fw.sh"
    no_log_client "$E_IP"
}

# rate limits count the real customer, not the router: two customers behind one router (SNAT to the same
# address), split mode; customer 1 goes over ratelimit_messages and gets 451 4.7.1, customer 2 is not limited
sc_split_ratelimit() {
    local c1b=10.77.1.3
    lab_topology
    nsx cli ip addr add $c1b/24 dev eth0
    router_rules rtr iptables in0 $R_OUT $R_OUT6
    apply_example prx firewall-split-proxy.iptables.sh ROUTER_NETS="$R_OUT/32" ROUTER_NETS6="$R_OUT6/128" PROXY_PORT=$PROXY_PORT
    mta_start
    make_key "$LAB_DIR/helper.key"
    helper_start helper rtr --listen $R_OUT --allow $P_IP/32 --key-file "$LAB_DIR/helper.key"
    conf_from_example smtpgate-split.conf "$LAB_DIR/proxy.conf" bind_address=:: timeout_lookup=2 \
        remote_udp_retries=2 timeout_connect=5 remote_udp_key_file="$LAB_DIR/helper.key" \
        ratelimit_messages=2/3600 state_store="sqlite:$LAB_DIR/state.db" control_path="$LAB_DIR/control.sock"
    proxy_start prx "$LAB_DIR/proxy.conf"
    local i res
    for i in 1 2; do
        make_message "$LAB_DIR/m$i" "ratelimit-$i-$$"
        res=$(send_mail cli $M_IP "$LAB_DIR/m$i" --source $C_IP); log "customer 1, message $i: $res"
        expect_ok "$res"
    done
    make_message "$LAB_DIR/m3" "ratelimit-3-$$"
    res=$(send_mail cli $M_IP "$LAB_DIR/m3" --source $C_IP); log "customer 1, message 3: $res"
    case $res in "fail mail 451 "*"rate limit reached"*"ratelimit_messages 2/3600"*) ;;
        *) fail "customer 1's third message: expected 451 rate limit at MAIL, got: $res";; esac
    make_message "$LAB_DIR/m4" "ratelimit-4-$$"
    res=$(send_mail cli $M_IP "$LAB_DIR/m4" --source $c1b); log "customer 2 behind the same router: $res"
    expect_ok "$res"
    mta_count 3
    expect_log ratelimit "client=$(re_ip $C_IP):[0-9]+ " "key=$(re_ip $C_IP) " "kind=messages " "count=2 " "limit=2 "
    expect_log transaction "client=$(re_ip $c1b):[0-9]+ " "result=250"
    ! grep -q "key=$(re_ip $R_OUT) " "$PROXY_LOG" || fail "the router's address was counted as a client"
}

# local mode: REDIRECT on the router, proxy on the router in mode netfilter
sc_local() {      # sc_local iptables|nft 4|6
    local fw=$1 fam=$2 dst=$M_IP cip=$C_IP rip=$R_MTA rin=$R_IN
    if [ "$fam" = 6 ]; then dst=$M_IP6; cip=$C_IP6; rip=$R_MTA6; rin=$R_IN6; fi
    lab_topology
    apply_example rtr "firewall-local.$fw.sh" CUSTOMER_IF=in0 PROXY_PORT=$PROXY_PORT
    mta_start
    conf_from_example smtpgate-local.conf "$LAB_DIR/proxy.conf" timeout_connect=5
    proxy_start rtr "$LAB_DIR/proxy.conf"
    make_message "$LAB_DIR/msg" "local-$fw-$fam-$$"
    local res; res=$(send_mail cli "$dst" "$LAB_DIR/msg"); log "client: $res"
    case $res in ok*) ;; *) mode_skip_if_unimplemented "$res";; esac
    expect_ok "$res"
    local env; env=$(mta_has_message "$LAB_DIR/msg") || exit 1
    case $env in *"peer=$(fmt_ip "$rip"):"*) ;; *) fail "MTA peer is not the router: $env";; esac
    expect_log open "client=$(re_ip "$cip"):[0-9]+ " "dest=$(re_ip "$dst"):25( |\$)"
    expect_log transaction "client=$(re_ip "$cip"):[0-9]+ " "dest=$(re_ip "$dst"):25 " "result=250"
    # a connection straight to the proxy port is not redirected: its original destination is the
    # proxy itself, which must be refused as a loop (a clean reply, nothing forwarded)
    local loop; loop=$(SEND_PORT=$PROXY_PORT send_mail cli "$rin" "$LAB_DIR/msg" --timeout 10); log "loop client: $loop"
    case $loop in fail\ *\ [45][0-9][0-9]\ *) ;; *) fail "direct connection to the proxy port: expected a 4xx/5xx refusal, got: $loop";; esac
    [ "$(ls "$LAB_DIR/mta"/msg-*.eml | wc -l)" = 1 ] || fail "the loop connection delivered a message"
    [ "$(wc -l < "$LAB_DIR/mta/connections.log")" = 1 ] || fail "the loop connection reached the MTA"
}

# TPROXY on the router, proxy on the router in mode tproxy (optionally keeping the client's source)
sc_tproxy() {     # sc_tproxy iptables|nft 4|6 [transparent]
    local fw=$1 fam=$2 tsrc=${3:-} dst=$M_IP cip=$C_IP rip=$R_MTA
    if [ "$fam" = 6 ]; then dst=$M_IP6; cip=$C_IP6; rip=$R_MTA6; fi
    lab_topology
    apply_example rtr "firewall-tproxy.$fw.sh" CUSTOMER_IF=in0 PROXY_PORT=$PROXY_PORT
    mta_start
    local ts=no; if [ "$tsrc" = transparent ]; then ts=yes; rip=$cip; fi
    conf_from_example smtpgate-tproxy.conf "$LAB_DIR/proxy.conf" timeout_connect=5 transparent_source=$ts
    proxy_start rtr "$LAB_DIR/proxy.conf"
    make_message "$LAB_DIR/msg" "tproxy-$fw-$fam-$ts-$$"
    local res; res=$(send_mail cli "$dst" "$LAB_DIR/msg"); log "client: $res"
    case $res in ok*) ;; *) mode_skip_if_unimplemented "$res";; esac
    expect_ok "$res"
    local env; env=$(mta_has_message "$LAB_DIR/msg") || exit 1
    case $env in *"peer=$(fmt_ip "$rip"):"*) ;; *) fail "MTA peer is not $rip: $env";; esac
    expect_log open "client=$(re_ip "$cip"):[0-9]+ " "dest=$(re_ip "$dst"):25( |\$)"
    expect_log transaction "client=$(re_ip "$cip"):[0-9]+ " "result=250"
    # the accepted socket's local address was the real destination
    expect_log open "client=$(re_ip "$cip"):[0-9]+ " "local=$(re_ip "$dst"):25 "
}

# two routers (router 1: iptables, router 2: nftables) sharing one proxy in mode remote-udp
sc_two_routers() {
    lab_topology router2
    router_rules rtr iptables in0 $R_OUT $R_OUT6
    router_rules rtr2 nft in0 $R2_OUT $R2_OUT6
    apply_example prx firewall-split-proxy.iptables.sh ROUTER_NETS="$R_OUT/32 $R2_OUT/32" \
        ROUTER_NETS6="$R_OUT6/128 $R2_OUT6/128" PROXY_PORT=$PROXY_PORT
    mta_start
    make_key "$LAB_DIR/helper.key"
    helper_start helper rtr --listen $R_OUT --allow $P_IP/32 --key-file "$LAB_DIR/helper.key"
    helper_start helper2 rtr2 --listen $R2_OUT --allow $P_IP/32 --key-file "$LAB_DIR/helper.key"
    conf_from_example smtpgate-split.conf "$LAB_DIR/proxy.conf" bind_address=:: timeout_lookup=2 \
        remote_udp_retries=2 timeout_connect=5 remote_udp_key_file="$LAB_DIR/helper.key"
    proxy_start prx "$LAB_DIR/proxy.conf"
    make_message "$LAB_DIR/msg1" "two-routers-1-$$"
    make_message "$LAB_DIR/msg2" "two-routers-2-$$"
    send_mail cli $M_IP "$LAB_DIR/msg1" --from one@customer1.test > "$LAB_DIR/res1" &
    local p1=$!
    send_mail cli2 $M_IP "$LAB_DIR/msg2" --from two@customer2.test > "$LAB_DIR/res2"
    wait $p1 || true
    local r1 r2; r1=$(cat "$LAB_DIR/res1"); r2=$(cat "$LAB_DIR/res2"); log "client1: $r1"; log "client2: $r2"
    case "$r1 $r2" in *fail*) mode_skip_if_unimplemented "$r1 $r2";; esac
    expect_ok "$r1"; expect_ok "$r2"
    local n; n=$(ls "$LAB_DIR/mta"/msg-*.eml 2>/dev/null | wc -l)
    [ "$n" = 2 ] || fail "MTA stored $n messages, expected 2"
    local f found1=no found2=no
    for f in "$LAB_DIR/mta"/msg-*.eml; do
        cmp -s "$f" "$LAB_DIR/msg1" && found1=yes
        cmp -s "$f" "$LAB_DIR/msg2" && found2=yes
    done
    [ $found1 = yes ] && [ $found2 = yes ] || fail "stored messages differ from the ones sent (1: $found1, 2: $found2)"
    # each session was looked up at the router it came through and logged with its own real client
    expect_log open "client=$(re_ip $C_IP):[0-9]+ " "dest=$(re_ip $M_IP):25( |\$)"
    expect_log open "client=$(re_ip $C2_IP):[0-9]+ " "dest=$(re_ip $M_IP):25( |\$)"
    expect_log transaction "client=$(re_ip $C_IP):[0-9]+ " "from=<one@customer1\.test>" "result=250"
    expect_log transaction "client=$(re_ip $C2_IP):[0-9]+ " "from=<two@customer2\.test>" "result=250"
    conntrack_has rtr "src=$C_IP dst=$M_IP .*src=$P_IP dst=$R_OUT sport=$PROXY_PORT " >/dev/null || fail "router 1 has no NAT entry"
    conntrack_has rtr2 "src=$C2_IP dst=$M_IP .*src=$P_IP dst=$R2_OUT sport=$PROXY_PORT " >/dev/null || fail "router 2 has no NAT entry"
}

# the helper alone, asked by a lab script (query.py) about a real DNAT+SNAT'ed connection that went
# through the router to a fixed-mode proxy: real conntrack entry, real NAT, independent of remote-udp
sc_helper_lookup() {  # sc_helper_lookup 4|6 v2|legacy
    local fam=$1 proto=$2 dst=$M_IP cip=$C_IP snat=$R_OUT proxy=$P_IP bind=0.0.0.0 hq=()
    if [ "$fam" = 6 ]; then dst=$M_IP6; cip=$C_IP6; snat=$R_OUT6; proxy=$P_IP6; bind=::; fi
    lab_topology
    router_rules rtr iptables in0 $R_OUT $R_OUT6
    mta_start
    make_key "$LAB_DIR/helper.key"
    if [ "$proto" = v2 ]; then
        helper_start helper rtr --listen $R_OUT --listen "[$R_OUT6]" --allow $P_IP/32 --allow $P_IP6/128 \
            --key-file "$LAB_DIR/helper.key"
        hq=(--key "$LAB_DIR/helper.key")
    else
        helper_start helper rtr --listen $R_OUT --allow $P_IP/32 --legacy-secret 77
        hq=(--legacy-secret 77)
    fi
    conf_from_example smtpgate-fixed.conf "$LAB_DIR/proxy.conf" fixed_server=$dst bind_address=$bind timeout_connect=5
    proxy_start prx "$LAB_DIR/proxy.conf"
    make_message "$LAB_DIR/msg" "lookup-$fam-$proto-$$"
    local res; res=$(send_mail cli "$dst" "$LAB_DIR/msg"); log "client: $res"
    expect_ok "$res"
    local ct; ct=$(conntrack_has rtr "src=$cip dst=$dst " "dport=25 src=$proxy dst=$snat sport=$PROXY_PORT ") \
        || fail "router conntrack has no DNAT+SNAT entry"
    local cport nport
    cport=$(printf '%s\n' "$ct" | grep -oE "sport=[0-9]+" | head -1 | cut -d= -f2)
    nport=$(printf '%s\n' "$ct" | grep -oE "dport=[0-9]+" | tail -1 | cut -d= -f2)
    local ans; ans=$(nsx prx "$PYTHON" "$E2E_DIR/query.py" "$snat" "$snat" "$nport" "$proxy" $PROXY_PORT "${hq[@]}" \
        $([ "$proto" = v2 ] && echo --replay)) || true
    log "helper answer: $ans"
    local want; want="found $(fmt_ip "$cip"):$cport $(fmt_ip "$dst"):25"
    [ "$(printf '%s\n' "$ans" | head -1)" = "$want" ] || fail "helper answered '$(printf '%s' "$ans" | head -1)', expected '$want'"
    if [ "$proto" = v2 ]; then
        [ "$(printf '%s\n' "$ans" | sed -n 2p)" = replay-dropped ] || fail "helper answered a replayed v2 query"
    fi
    # a connection the router does not know
    ans=$(nsx prx "$PYTHON" "$E2E_DIR/query.py" "$snat" "$snat" 1 "$proxy" $PROXY_PORT "${hq[@]}") || true
    [ "$ans" = notfound ] || fail "unknown connection: helper answered '$ans', expected notfound"
}

# fixed+xclient with a real Postfix smtpd: the proxy on the router (REDIRECT, so it sees the real
# client), Postfix trusts XCLIENT from the router's address and must log the customer as the client
sc_xclient() {
    lab_topology
    apply_example rtr firewall-local.iptables.sh CUSTOMER_IF=in0 PROXY_PORT=$PROXY_PORT
    conf_from_example smtpgate-xclient.conf "$LAB_DIR/proxy.conf" fixed_server=$M_IP timeout_connect=5
    smtpgate_probe_mode "$LAB_DIR/proxy.conf"
    XCLIENT_HOSTS=$R_MTA postfix_start
    proxy_start rtr "$LAB_DIR/proxy.conf"
    make_message "$LAB_DIR/msg" "xclient-$$"
    local res; res=$(send_mail cli $M_IP "$LAB_DIR/msg"); log "client: $res"
    case $res in ok*) ;; *) mode_skip_if_unimplemented "$res";; esac
    expect_ok "$res"
    local ml=$LAB_DIR/pf/maillog qid
    qid=$(printf '%s\n' "$res" | grep -oE 'queued as [0-9A-F]+' | awk '{ print $3 }')
    [ -n "$qid" ] || fail "no Postfix queue id in the reply: $res"
    wait_for 5 grep -q "$qid: client=.*\[$C_IP\]" "$ml" \
        || fail "Postfix did not take the client from XCLIENT: $(grep "$qid: client=" "$ml" | head -1)"
    wait_for 5 grep -q "$qid: from=<alice@customer.test>" "$ml" || fail "Postfix did not queue the message"
    expect_log open "client=$(re_ip $C_IP):[0-9]+ " "dest=$(re_ip $M_IP):25( |\$)"
    expect_log transaction "client=$(re_ip $C_IP):[0-9]+ " "result=250"
}

# helper faults: every one must end in a clean 4xx to the client and a proxy log line, and the MTA
# must see no connection at all (never a forwarded session)
sc_helper_fault() {   # sc_helper_fault not-running|wrong-key|disallowed|forged-v2|forged-legacy
    local fault=$1 topo=() helper_args=() opts=()
    case $fault in forged-*) topo=(evil hub);; esac
    lab_topology "${topo[@]}"
    router_rules rtr iptables in0 $R_OUT $R_OUT6
    mta_start
    make_key "$LAB_DIR/helper.key"
    make_key "$LAB_DIR/other.key"
    opts=(remote_udp_key_file="$LAB_DIR/helper.key")
    case $fault in
        not-running) helper_probe;;
        wrong-key)   helper_start helper rtr --listen $R_OUT --allow $P_IP/32 --key-file "$LAB_DIR/other.key";;
        disallowed)  helper_start helper rtr --listen $R_OUT --allow 10.77.9.0/24 --key-file "$LAB_DIR/helper.key";;
        forged-v2|forged-legacy)
            [ $fault = forged-legacy ] && opts=(remote_udp_key_file= remote_udp_secret=0)
            # the real helper is silent (its port dropped); only the forger answers
            nsx rtr iptables -I INPUT -p udp --dport 114 -j DROP
            bg_start forger evil "$PYTHON" "$E2E_DIR/forger.py" --iface eth0 --own $E_IP --spoof $R_OUT \
                --client $C_IP --dest $M_IP --key "$LAB_DIR/helper.key" --count-file "$LAB_DIR/forged" --lifetime 60
            wait_for 10 grep -q '^ready' "$LAB_DIR/forger.out" || fail "forger did not start: $(tail -2 "$LAB_DIR/forger.out")";;
    esac
    conf_from_example smtpgate-split.conf "$LAB_DIR/proxy.conf" bind_address=:: timeout_lookup=1 \
        remote_udp_retries=2 timeout_connect=5 "${opts[@]}"
    proxy_start prx "$LAB_DIR/proxy.conf"
    make_message "$LAB_DIR/msg" "fault-$fault-$$"
    local res; res=$(send_mail cli $M_IP "$LAB_DIR/msg" --timeout 20); log "client: $res"
    mode_skip_if_unimplemented "$res" # a stub that refuses everything would pass for the wrong reason
    expect_4xx "$res"
    sleep 0.5                        # a wrongly accepted reply would connect to the MTA by now
    mta_nothing
    expect_log lookup_failed "client=$(re_ip $R_OUT):[0-9]+ "
    no_log transaction
    case $fault in
        wrong-key)  wait_for 3 grep -q bad_mac "$LAB_DIR/helper.log" || fail "helper log does not mention bad_mac";;
        disallowed) wait_for 3 grep -q disallowed "$LAB_DIR/helper.log" || fail "helper log does not mention disallowed";;
        forged-*)   local n; n=$(cat "$LAB_DIR/forged")
                    [ "$n" -ge 1 ] || fail "the forger saw no query, so the test proved nothing"
                    log "forged replies sent: $n";;
    esac
}

# content scanning with clamd on another host (scn, on the proxy's segment: TCP to a lab address, so
# the proxy and clamd share no filesystem), split mode through the router's DNAT.  One clamd for the
# whole scenario: EICAR attached by swaks -> 550 with the virus name and nothing stored; clean
# messages (IPv4, IPv6) -> stored byte-identical behind a generic NAT header naming the real client;
# clamd stopped -> 451 4.3.0 and nothing stored.
sc_scan() {
    lab_topology scanner
    router_rules rtr iptables in0 $R_OUT $R_OUT6
    apply_example prx firewall-split-proxy.iptables.sh ROUTER_NETS="$R_OUT/32" ROUTER_NETS6="$R_OUT6/128" PROXY_PORT=$PROXY_PORT
    mta_start
    clamd_start scn $S_IP $CLAMD_PORT
    local listen; listen=$(nsx scn ss -Hltn | awk '{ print $4 }' | sort -u | tr '\n' ' ')
    [ "$listen" = "$S_IP:$CLAMD_PORT " ] || fail "clamd listens on '$listen', expected only $S_IP:$CLAMD_PORT"
    make_key "$LAB_DIR/helper.key"
    helper_start helper rtr --listen $R_OUT --listen "[$R_OUT6]" --allow $P_IP/32 --allow $P_IP6/128 \
        --key-file "$LAB_DIR/helper.key"
    conf_from_example smtpgate-split.conf "$LAB_DIR/proxy.conf" proxy_name=proxy.lab.test bind_address=:: \
        timeout_lookup=2 remote_udp_retries=2 timeout_connect=5 remote_udp_key_file="$LAB_DIR/helper.key" \
        antivirus_type=clamd antivirus_path=$S_IP:$CLAMD_PORT timeout_scanner=5 \
        spool_path="$LAB_DIR/spool" nat_header_type=generic
    proxy_start prx "$LAB_DIR/proxy.conf"
    [ -d "$LAB_DIR/spool" ] || fail "the proxy did not create spool_path $LAB_DIR/spool"

    # 1. a virus: refused at the end of DATA with its name, the MTA never completes the message
    local out reply
    out=$(timeout 40 ip netns exec "$(ns cli)" swaks --server $M_IP --port 25 --helo client.customer.test \
        --from alice@customer.test --to bob@example.test --timeout 15 --header 'Subject: scan virus' \
        --body 'The attachment is the EICAR test file.' --attach @"$LAB_DIR/clamd/eicar.com" 2>&1) || true
    reply=$(printf '%s\n' "$out" | grep -A1 -E '^ -> \.$' | sed -n 's/^ *<[-*]* *//p' | head -1)
    log "swaks (EICAR): $reply"
    # the enhanced code only when the MTA advertised ENHANCEDSTATUSCODES (aiosmtpd does not)
    printf '%s\n' "$reply" | grep -qE "^550 (5\.7\.1 )?proxy\.lab\.test: virus found: $(re_lit "$CLAMD_VIRUS")\$" \
        || fail "EICAR: expected 550 naming $CLAMD_VIRUS, got: ${reply:-$(printf '%s\n' "$out" | tail -2 | tr '\n' ' ')}"
    expect_log scan "scanner=clamd " "result=virus " "virus=$(re_lit "$CLAMD_VIRUS")( |\$)"
    expect_log transaction "client=$(re_ip $C_IP):[0-9]+ " "scan=virus " "result=aborted " "why=virus( |\$)"
    mta_count 0

    # 2. clean messages from the customer, over IPv4 and IPv6: the header names the real client
    local fam cip dst n=0
    for fam in 4 6; do
        cip=$C_IP dst=$M_IP; [ $fam = 6 ] && { cip=$C_IP6 dst=$M_IP6; }
        n=$((n + 1))
        make_message "$LAB_DIR/clean$fam" "scan-clean-$fam-$$"
        out=$(send_mail cli $dst "$LAB_DIR/clean$fam"); log "client (clean, IPv$fam): $out"
        expect_ok "$out"
        mta_count $n
        local line sess cport
        line=$(log_wait transaction "client=$(re_ip "$cip"):[0-9]+ " "scan=clean " "result=250") \
            || fail "no clean transaction line for $cip; log tail: $(tail -2 "$PROXY_LOG" | tr '\n' '|')"
        sess=$(printf '%s\n' "$line" | grep -oE ' session=[^ ]+' | cut -d= -f2)
        cport=$(printf '%s\n' "$line" | grep -oE " client=$(re_ip "$cip"):[0-9]+" | grep -oE '[0-9]+$')
        conntrack_has rtr "src=$cip dst=$dst sport=$cport dport=25 " >/dev/null \
            || fail "the header's client port $cport is not the client's own port in the router's conntrack"
        { printf 'X-Nat-Received: from [%s]:%s [ident-empty]\r\n\tby proxy.lab.test with SMTPGate id %s\r\n' \
              "$cip" "$cport" "$sess"
          cat "$LAB_DIR/clean$fam"; } > "$LAB_DIR/clean$fam.expected"
        cmp -s "$LAB_DIR/clean$fam.expected" "$LAB_DIR/mta/msg-$n.eml" \
            || fail "IPv$fam: stored message is not the NAT header + the message sent; stored head: $(head -c 200 "$LAB_DIR/mta/msg-$n.eml" | tr '\r\n\t' '   ')"
    done
    expect_log scan "scanner=clamd " "result=clean "

    # 3. clamd gone: a temporary failure, the client keeps the message
    bg_stop clamd
    ! clamd_answers prx $S_IP $CLAMD_PORT || fail "clamd still answers after it was stopped"
    make_message "$LAB_DIR/msg-down" "scan-down-$$"
    out=$(send_mail cli $M_IP "$LAB_DIR/msg-down"); log "client (clamd stopped): $out"
    printf '%s\n' "$out" | grep -qE '^fail data 451 (4\.3\.0 )?proxy\.lab\.test: ' \
        || fail "clamd stopped: expected 451 from the proxy, got: $out"
    expect_log transaction "client=$(re_ip $C_IP):[0-9]+ " "scan=error "
    mta_count 2
}
# the Exchange story (Examples/smtpgate-exchange.conf + firewall-exchange.*.sh, applied verbatim with the
# lab's addresses): the router is the masquerading firewall (outside in0, LAN mta0) and runs smtpgate;
# the remote server (cli) reaches the internal server (mta) on 25 (the SMTP listener) and 135,
# 10001-10003 (forwards); another outside host (cli3) reaches nothing, a LAN host that is not the
# remote server is refused by smtpgate itself (not-allowed, real address logged)
EXCHANGE_PORTS="135 10001 10002 10003"
sc_exchange() {   # sc_exchange iptables|nft
    local fw=$1 lan2=10.77.3.26 p
    lab_topology cli3
    nsx mta ip addr add $lan2/24 dev eth0
    apply_example rtr "firewall-exchange.$fw.sh" EXT_IF=in0 FW_IP=$R_IN REMOTE=$C_IP LAN=10.77.3.0/24
    mta_start
    local eps=(); for p in $EXCHANGE_PORTS; do eps+=("$M_IP:$p"); done
    tcp_server_start tcp mta "${eps[@]}"
    # documentation addresses -> lab: public 192.0.2.1 = rtr in0, LAN 198.51.100.1 = rtr mta0,
    # internal server 198.51.100.25 = mta, remote server 203.0.113.25 = cli
    conf_subst smtpgate-exchange.conf "$LAB_DIR/proxy.conf" 192.0.2.1=$R_IN 198.51.100.1=$R_MTA \
        198.51.100.25=$M_IP 203.0.113.25=$C_IP
    proxy_start rtr "$LAB_DIR/proxy.conf"

    # 1. the remote server: SMTP through the listener, each RPC port through its forward
    make_message "$LAB_DIR/msg" "exchange-$fw-$$"
    local res; res=$(send_mail cli $R_IN "$LAB_DIR/msg"); log "remote, SMTP to $R_IN:25: $res"
    expect_ok "$res"
    local env; env=$(mta_has_message "$LAB_DIR/msg") || exit 1
    case $env in *"peer=$R_MTA:"*) ;; *) fail "internal SMTP server's peer is not the firewall's LAN address: $env";; esac
    expect_log transaction "client=$(re_ip $C_IP):[0-9]+ " "result=250"
    head -c 65536 /dev/urandom > "$LAB_DIR/payload"
    local n=0 cport nb line
    for p in $EXCHANGE_PORTS; do
        n=$((n + 1))
        res=$(tcp_talk cli $R_IN $p "$LAB_DIR/payload" "$LAB_DIR/got-$p"); log "remote, TCP to $R_IN:$p: $res"
        case $res in "result=ok "*) ;; *) fail "remote server to port $p: $res";; esac
        { printf 'banner %s\n' $p; cat "$LAB_DIR/payload"; } > "$LAB_DIR/want-$p"
        cmp -s "$LAB_DIR/want-$p" "$LAB_DIR/got-$p" \
            || fail "port $p: the remote server did not get the internal server's banner for port $p and its bytes back ($(cmp "$LAB_DIR/want-$p" "$LAB_DIR/got-$p" 2>&1 | head -1))"
        wait_for 5 test -f "$LAB_DIR/tcp/conn-$n.in" || fail "port $p: the internal server did not finish connection $n"
        cmp -s "$LAB_DIR/payload" "$LAB_DIR/tcp/conn-$n.in" || fail "port $p: bytes at the internal server differ from those sent"
        grep -qE "^connect $n peer=$(re_ip $R_MTA):[0-9]+ local=$(re_ip $M_IP):$p\$" "$LAB_DIR/tcp/connections.log" \
            || fail "port $p: the internal server was not reached from the firewall's LAN address: $(sed -n "${n}p" "$LAB_DIR/tcp/connections.log")"
        cport=$(talk_field "$res" local | grep -oE '[0-9]+$')
        nb=$(wc -c < "$LAB_DIR/want-$p")
        line=$(log_wait forward "listener=$([ $p = 135 ] && echo epmap || echo exchange-rpc) " "client=$(re_ip $C_IP):$cport " \
            "dest=$(re_ip $M_IP):$p " "bytes_in=65536 " "bytes_out=$nb " "result=done-remote-closed( |\$)") \
            || fail "port $p: no forward line for $C_IP:$cport to $M_IP:$p with the bytes and done-remote-closed; log tail: $(grep ' forward ' "$PROXY_LOG" | tail -2 | cut -c1-250 | tr '\n' '|')"
        log "proxy: ${line#*: }"
    done
    [ "$(tcp_conns tcp)" = 4 ] || fail "internal server saw $(tcp_conns tcp) TCP connections, expected 4"

    # 2. another outside host: the firewall DNATs only the remote server, so the outside ports lead
    #    nowhere (nothing listens there) and smtpgate's own ports are dropped; nothing reaches smtpgate
    for p in 25 $EXCHANGE_PORTS; do
        res=$(tcp_probe cli3 $R_IN $p)
        [ "$res" = refused ] || fail "another outside host ($C3_IP) to $R_IN:$p: expected refused (not DNATed), got $res"
    done
    res=$(tcp_probe cli3 $R_IN 10135)
    [ "$res" = timeout ] || fail "another outside host reached smtpgate's port 10135 directly: $res (the firewall should drop it)"
    ! grep -q "client=$(re_ip $C3_IP):" "$PROXY_LOG" || fail "smtpgate logged a connection of $C3_IP that the firewall should have stopped"

    # 3. a LAN host that is not the remote server, straight to smtpgate's ports (the firewall drops
    #    those only on the outside interface): smtpgate's allow refuses it, closed without data
    for p in 10135 20002; do
        res=$(tcp_talk mta $R_IN $p "$LAB_DIR/payload" "$LAB_DIR/lan-$p" --source $lan2); log "LAN host $lan2 to $R_IN:$p: $res"
        case $res in "result=closed "*|"result=reset "*) ;; *) fail "LAN host $lan2 to smtpgate's port $p: expected closed without data, got: $res";; esac
        [ "$(talk_field "$res" received)" = 0 ] || fail "LAN host $lan2 got data from port $p: $res"
        cport=$(talk_field "$res" local | grep -oE '[0-9]+$')
        line=$(log_wait forward "listener=$([ $p = 10135 ] && echo epmap || echo exchange-rpc) " "client=$(re_ip $lan2):$cport " \
            "dest=$(re_ip $M_IP):$([ $p = 10135 ] && echo 135 || echo 10002) " "bytes_in=0 " "bytes_out=0 " "result=not-allowed " "rule=global( |\$)") \
            || fail "no not-allowed forward line for $lan2:$cport on port $p; forward lines: $(grep ' forward ' "$PROXY_LOG" | tail -2 | cut -c1-250 | tr '\n' '|')"
        log "proxy: ${line#*: }"
    done
    [ "$(tcp_conns tcp)" = 4 ] || fail "a refused connection reached the internal server ($(tcp_conns tcp) connections)"
    # ... and its SMTP session is refused by the listener's client_restrictions
    res=$(SEND_PORT=10025 send_mail mta $R_IN "$LAB_DIR/msg" --source $lan2); log "LAN host $lan2 to $R_IN:10025: $res"
    case $res in "fail rcpt 554 "*) ;; *) fail "LAN host's SMTP session: expected 554 at RCPT (client_restrictions), got: $res";; esac
    mta_count 1

    # 4. the masquerade: the internal server's own connections out leave as the firewall's address
    tcp_server_start outside cli "$C_IP:8080"
    printf 'hello\n' > "$LAB_DIR/hello"
    res=$(tcp_talk mta $C_IP 8080 "$LAB_DIR/hello" "$LAB_DIR/hello-got"); log "internal server out to $C_IP:8080: $res"
    case $res in "result=ok "*) ;; *) fail "internal server to the outside: $res";; esac
    grep -qE "^connect 1 peer=$(re_ip $R_IN):[0-9]+ " "$LAB_DIR/outside/connections.log" \
        || fail "the internal server's connection was not masqueraded: $(head -1 "$LAB_DIR/outside/connections.log")"
}

# a transparent [forward] of a non-SMTP port in split mode: the router DNATs the customers' connections
# to port FWD_PORT (any destination) to the proxy's forward on FWD_LISTEN and SNATs them
# (firewall-split-router with SMTP_PORT/PROXY_PORT set to those), the helper on the router tells the
# proxy the real client and destination; smtpgate runs forwards only (no SMTP listener).
FWD_PORT=8443; FWD_LISTEN=9443
sc_forward_split() {  # sc_forward_split iptables|nft 4|6
    local fw=$1 fam=$2 dst=$M_IP cip=$C_IP proxy=$P_IP rout=$R_OUT
    if [ "$fam" = 6 ]; then dst=$M_IP6; cip=$C_IP6; proxy=$P_IP6; rout=$R_OUT6; fi
    lab_topology evil
    apply_example rtr "firewall-split-router.$fw.sh" CUSTOMER_IF=in0 PROXY_IP=$P_IP ROUTER_IP=$R_OUT \
        PROXY_IP6=$P_IP6 ROUTER_IP6=$R_OUT6 PROXY_PORT=$FWD_LISTEN SMTP_PORT=$FWD_PORT
    apply_example prx "firewall-split-proxy.$fw.sh" ROUTER_NETS="$R_OUT/32" ROUTER_NETS6="$R_OUT6/128" \
        PROXY_PORT=$FWD_LISTEN
    tcp_server_start tcp mta "$M_IP:$FWD_PORT" "[$M_IP6]:$FWD_PORT"
    make_key "$LAB_DIR/helper.key"
    helper_start helper rtr --listen $R_OUT --listen "[$R_OUT6]" --allow $P_IP/32 --allow $P_IP6/128 \
        --key-file "$LAB_DIR/helper.key"
    cat > "$LAB_DIR/proxy.conf" <<CONF
# forwards only: no global mode, so no SMTP listener
remote_port 114
remote_udp_key_file $LAB_DIR/helper.key
remote_udp_retries 2
timeout_lookup 2
timeout_connect 5
control_path $LAB_DIR/control.sock
spool_path $LAB_DIR/spool

[forward tls]
bind_address ::
port $FWD_LISTEN
mode remote-udp
# judged on the real client the helper names: the router's address (the connection's source) is not allowed
allow 10.77.1.0/24
allow fd77:0:0:1::/64
CONF
    proxy_start prx "$LAB_DIR/proxy.conf"
    local listen; listen=$(nsx prx ss -Hltn | awk '{ print $4 }' | sed -E 's/.*:([0-9]+)$/\1/' | sort -u | tr '\n' ' ')
    [ "$listen" = "$FWD_LISTEN " ] || fail "the proxy listens on TCP ports '$listen', expected only the forward's $FWD_LISTEN (no SMTP listener)"

    head -c 262144 /dev/urandom > "$LAB_DIR/payload"
    local res; res=$(tcp_talk cli "$dst" $FWD_PORT "$LAB_DIR/payload" "$LAB_DIR/got"); log "client: $res"
    # what the client got back: the server's banner, then its own bytes echoed
    { printf 'banner %s\n' $FWD_PORT; cat "$LAB_DIR/payload"; } > "$LAB_DIR/want"
    case $res in "result=ok "*) ;; *) fail "client through the forward: $res";; esac
    cmp -s "$LAB_DIR/want" "$LAB_DIR/got" || fail "client did not get the banner and its bytes back ($(cmp "$LAB_DIR/want" "$LAB_DIR/got" 2>&1 | head -1))"
    local cport; cport=$(talk_field "$res" local | grep -oE '[0-9]+$')
    # the server on the MTA got the bytes exactly, on one connection from the proxy
    wait_for 5 test -f "$LAB_DIR/tcp/conn-1.in" || fail "the server on the MTA did not finish a connection"
    [ "$(tcp_conns tcp)" = 1 ] || fail "the server on the MTA saw $(tcp_conns tcp) connections, expected 1"
    cmp -s "$LAB_DIR/payload" "$LAB_DIR/tcp/conn-1.in" || fail "bytes at the MTA's server differ from those sent ($(cmp "$LAB_DIR/payload" "$LAB_DIR/tcp/conn-1.in" 2>&1 | head -1))"
    grep -qE "^connect 1 peer=$(re_ip "$proxy"):[0-9]+ local=$(re_ip "$dst"):$FWD_PORT\$" "$LAB_DIR/tcp/connections.log" \
        || fail "the MTA's server was not reached from the proxy: $(head -1 "$LAB_DIR/tcp/connections.log")"
    # the router's NAT entry gives the port the proxy saw (nat_source)
    local ct; ct=$(conntrack_has rtr "src=$cip dst=$dst sport=$cport dport=$FWD_PORT " "src=$proxy dst=$rout sport=$FWD_LISTEN ") \
        || fail "router conntrack has no DNAT+SNAT entry for $cip:$cport -> $dst:$FWD_PORT"
    log "conntrack: $ct"
    local nport; nport=$(printf '%s\n' "$ct" | grep -oE "dport=[0-9]+" | tail -1 | cut -d= -f2)
    local n nb; n=$(wc -c < "$LAB_DIR/payload"); nb=$(wc -c < "$LAB_DIR/want")
    expect_log forward "listener=tls " "client=$(re_ip "$cip"):$cport " "nat_source=$(re_ip "$rout"):$nport " \
        "dest=$(re_ip "$dst"):$FWD_PORT " "bytes_in=$n " "bytes_out=$nb " "result=done-remote-closed( |\$)"
    log "proxy: $(log_match forward "client=$(re_ip "$cip"):$cport " | sed 's/.*: //')"
    [ "$(log_match forward | wc -l)" = 1 ] || fail "expected one forward line, got: $(grep ' forward ' "$PROXY_LOG" | tr '\n' '|')"
    # the proxy-side example keeps everybody but the routers away from the forward's port
    local direct; direct=$(tcp_probe evil $P_IP $FWD_LISTEN)
    [ "$direct" = refused ] || fail "a third host reached the forward's port directly ($direct) despite firewall-split-proxy.$fw.sh"
    ! grep -q " forward .*client=$(re_ip $E_IP):" "$PROXY_LOG" || fail "the proxy logged a forward from the third host"
}
mta_count() {     # mta_count N : the MTA stored exactly N messages (none half-written)
    local c; c=$(ls "$LAB_DIR/mta"/msg-*.eml 2>/dev/null | wc -l)
    [ "$c" = "$1" ] || fail "MTA stored $c messages, expected $1"
}

# ============================ runner =============================================================
fmt_ip() { case $1 in *:*) printf '[%s]' "$1";; *) printf '%s' "$1";; esac; }
re_ip() { fmt_ip "$1" | sed -e 's/[].[]/\\&/g'; }
re_lit() { printf '%s' "$1" | sed -e 's/[][\\.*^$+?(){}|/]/\\&/g'; }

tcp_probe() {     # tcp_probe NS HOST PORT : prints connected|refused|timeout
    ip netns exec "$(ns "$1")" "$PYTHON" - "$2" "$3" <<'EOF'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    print("connected"); s.close()
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("timeout" if isinstance(e, socket.timeout) else "error:" + str(e))
EOF
}
no_log_client() { ! grep -q "client=$(fmt_ip "$1"):" "$PROXY_LOG" || fail "the proxy logged a session from $1"; }

SCENARIOS=(
    "fixed-dnat-iptables        sc_fixed iptables 4"
    "fixed-dnat-nft             sc_fixed nft 4"
    "fixed-dnat-ipv6-iptables   sc_fixed iptables 6"
    "fixed-dnat-ipv6-nft        sc_fixed nft 6"
    "split-v2-iptables          sc_split iptables 4 v2"
    "split-v2-nft               sc_split nft 4 v2"
    "split-legacy-iptables      sc_split iptables 4 legacy"
    "split-legacy-nft           sc_split nft 4 legacy"
    "split-v2-ipv6-iptables     sc_split iptables 6 v2"
    "split-v2-ipv6-nft          sc_split nft 6 v2"
    "local-iptables             sc_local iptables 4"
    "local-nft                  sc_local nft 4"
    "local-ipv6-iptables        sc_local iptables 6"
    "local-ipv6-nft             sc_local nft 6"
    "tproxy-iptables            sc_tproxy iptables 4"
    "tproxy-nft                 sc_tproxy nft 4"
    "tproxy-ipv6-iptables       sc_tproxy iptables 6"
    "tproxy-ipv6-nft            sc_tproxy nft 6"
    "tproxy-transparent-iptables sc_tproxy iptables 4 transparent"
    "tproxy-transparent-nft     sc_tproxy nft 4 transparent"
    "two-routers                sc_two_routers"
    "split-ratelimit-two-customers sc_split_ratelimit"
    "fixed-xclient-postfix      sc_xclient"
    "helper-lookup-v2           sc_helper_lookup 4 v2"
    "helper-lookup-legacy       sc_helper_lookup 4 legacy"
    "helper-lookup-ipv6         sc_helper_lookup 6 v2"
    "helper-not-running         sc_helper_fault not-running"
    "helper-wrong-key           sc_helper_fault wrong-key"
    "helper-disallowed-proxy    sc_helper_fault disallowed"
    "helper-forged-reply-v2     sc_helper_fault forged-v2"
    "helper-forged-reply-legacy sc_helper_fault forged-legacy"
    "scan-clamd-remote-split    sc_scan"
    "exchange-iptables          sc_exchange iptables"
    "exchange-nft               sc_exchange nft"
    "forward-split-iptables     sc_forward_split iptables 4"
    "forward-split-nft          sc_forward_split nft 4"
    "forward-split-ipv6-iptables sc_forward_split iptables 6"
    "forward-split-ipv6-nft     sc_forward_split nft 6"
)

run_one() {       # (in a child process) run_one TAG DIR FUNCTION ARGS...
    lab_init "$1" "$2"; shift 2
    trap 'exit 143' TERM INT
    trap 'lab_cleanup' EXIT
    trap '[ -s "$LAB_DIR/reason" ] || echo "command failed (line $LINENO): $BASH_COMMAND" > "$LAB_DIR/reason"' ERR
    set -eE
    "$@"
}

if [ "${1:-}" = --one ]; then shift; run_one "$@"; exit $?; fi

VERBOSE=no
[ "${1:-}" = -v ] && { VERBOSE=yes; shift; }
FILTER=${1:-.}

if [ "$(id -u)" != 0 ]; then
    echo "SKIP e2e: the NAT lab needs root (network namespaces)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
for tool in ip iptables ip6tables nft conntrack ss "$PYTHON"; do
    command -v "$tool" >/dev/null || { echo "FAIL e2e: $tool is missing (make deps)"; echo "0 passed, 1 failed"; exit 1; }
done

RUN_TAG=sg$$$(printf '%04x' $((RANDOM % 65536)))
RUN_DIR=${E2E_KEEP:-$(mktemp -d /tmp/smtpgate-e2e.XXXXXX)}
mkdir -p "$RUN_DIR"
run_cleanup() {   # whatever a scenario left behind (e.g. killed by its timeout)
    local d
    for d in "$RUN_DIR"/*/; do
        [ -f "$d/netns" ] || continue
        ( LAB_DIR=${d%/}; lab_cleanup )
    done
    [ -n "${E2E_KEEP:-}" ] || rm -rf "$RUN_DIR"
}
trap run_cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0 skipped=0 idx=0
for entry in "${SCENARIOS[@]}"; do
    read -r name fn args <<< "$entry"
    [[ $name =~ $FILTER ]] || continue
    idx=$((idx + 1))
    dir=$RUN_DIR/$name
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    timeout -k 5 90 bash "$E2E_DIR/run.sh" --one "$RUN_TAG-$idx" "$dir" $fn $args > "$dir/scenario.log" 2>&1
    rc=$?
    why=$(head -1 "$dir/reason" 2>/dev/null)
    case $rc in
        0)  echo "PASS $name"; passed=$((passed + 1));;
        77) echo "SKIP $name: $why"; skipped=$((skipped + 1));;
        *)  [ -n "$why" ] || why="exit status $rc$([ $rc = 124 ] && echo ' (scenario timed out)'); last lines: $(tail -2 "$dir/scenario.log" | tr '\n' ' ' | cut -c1-200)"
            echo "FAIL $name: $why"; failed=$((failed + 1))
            if [ $VERBOSE = yes ]; then sed 's/^/    | /' "$dir/scenario.log"; fi;;
    esac
    ( LAB_DIR=$dir; lab_cleanup )
done
if [ $skipped -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ $failed = 0 ]
