# SMTPGate firewall rules - scenario "split", the ROUTER side, nftables variant
# (same as firewall-split-router.iptables.sh; read the description there).
#
#   customer --(CUSTOMER_IF)--> router: dnat tcp/25 -> PROXY_IP:PROXY_PORT, snat -> ROUTER_IP
#                                  +-- smtpgate-helper on ROUTER_IP:114 <-- UDP query from the proxy
#
# Only traffic entering from CUSTOMER_IF is redirected (the proxy's own port-25 connections pass
# through here untouched); only connections this table DNATed are SNATed ("ct status dnat").
# Table "inet smtpgate_router" is replaced when this is applied again.  Its input chain only
# accepts the helper's queries; a drop policy in another table of yours still applies.
: "${CUSTOMER_IF:?set CUSTOMER_IF to the interface the customers are on}"
: "${PROXY_IP:?set PROXY_IP to the proxy's IPv4 address}"
: "${ROUTER_IP:?set ROUTER_IP to this router's IPv4 address on the proxy's side}"
: "${PROXY_PORT:=9199}"     # smtpgate's port (option "port")
: "${SMTP_PORT:=25}"        # the port that is intercepted
: "${HELPER_PORT:=114}"     # smtpgate-helper's UDP port (option "remote_port" on the proxy)
: "${PROXY_IP6:=}"          # optional: the proxy's IPv6 address
: "${ROUTER_IP6:=}"         # optional: this router's IPv6 address on the proxy's side

SG_DNAT6="" SG_SNAT6="" SG_IN6=""
if [ -n "$PROXY_IP6" ] && [ -n "$ROUTER_IP6" ]; then
    SG_DNAT6="iifname \"$CUSTOMER_IF\" meta nfproto ipv6 tcp dport $SMTP_PORT dnat ip6 to [$PROXY_IP6]:$PROXY_PORT"
    SG_SNAT6="ip6 daddr $PROXY_IP6 tcp dport $PROXY_PORT ct status dnat snat ip6 to $ROUTER_IP6"
    SG_IN6="ip6 saddr $PROXY_IP6 ip6 daddr $ROUTER_IP6 udp dport $HELPER_PORT accept"
fi
nft -f - <<NFT
table inet smtpgate_router
delete table inet smtpgate_router
table inet smtpgate_router {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "$CUSTOMER_IF" meta nfproto ipv4 tcp dport $SMTP_PORT dnat ip to $PROXY_IP:$PROXY_PORT
        $SG_DNAT6
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip daddr $PROXY_IP tcp dport $PROXY_PORT ct status dnat snat ip to $ROUTER_IP
        $SG_SNAT6
    }
    chain input {
        type filter hook input priority filter; policy accept;
        ip saddr $PROXY_IP ip daddr $ROUTER_IP udp dport $HELPER_PORT accept
        $SG_IN6
    }
}
NFT
