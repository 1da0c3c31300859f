# SMTPGate firewall rules - scenario "TPROXY", nftables variant (same as firewall-tproxy.iptables.sh).
#
#   customer --(CUSTOMER_IF)--> router: tproxy tcp/25 -> local socket :PROXY_PORT --> smtpgate --> real MTA
#
# The tproxy statement hands the customer's connection to smtpgate's transparent listening socket;
# "socket transparent 1" marks packets of connections that already have a transparent socket here
# (including replies to outgoing connections that keep the customer's source address with
# "transparent_source yes").  Marked packets are delivered locally by the policy routing below.
# Table "inet smtpgate_tproxy" is replaced when this is applied again.
# Pair with Examples/smtpgate-tproxy.conf.  Needs nft_tproxy and nft_socket (kernel 4.19+).
: "${CUSTOMER_IF:?set CUSTOMER_IF to the interface the customers are on}"
: "${PROXY_PORT:=9199}"     # smtpgate's port (option "port")
: "${SMTP_PORT:=25}"        # the port that is intercepted
: "${TPROXY_MARK:=0x1}"     # firewall mark (a single bit) used for the policy routing
: "${TPROXY_TABLE:=100}"    # routing table that delivers marked packets locally
: "${IPV6:=yes}"            # yes: IPv6 as well

SG_V6_RULE=""
if [ "$IPV6" = yes ]; then
    SG_V6_RULE="iifname \"$CUSTOMER_IF\" meta nfproto ipv6 tcp dport $SMTP_PORT tproxy ip6 to :$PROXY_PORT meta mark set meta mark or $TPROXY_MARK accept"
fi
nft -f - <<NFT
table inet smtpgate_tproxy
delete table inet smtpgate_tproxy
table inet smtpgate_tproxy {
    chain prerouting {
        type filter hook prerouting priority mangle; policy accept;
        meta l4proto tcp socket transparent 1 meta mark set meta mark or $TPROXY_MARK accept
        iifname "$CUSTOMER_IF" meta nfproto ipv4 tcp dport $SMTP_PORT tproxy ip to :$PROXY_PORT meta mark set meta mark or $TPROXY_MARK accept
        $SG_V6_RULE
    }
}
NFT
ip rule add fwmark "$TPROXY_MARK/$TPROXY_MARK" lookup "$TPROXY_TABLE"
ip route add local 0.0.0.0/0 dev lo table "$TPROXY_TABLE"
if [ "$IPV6" = yes ]; then
    ip -6 rule add fwmark "$TPROXY_MARK/$TPROXY_MARK" lookup "$TPROXY_TABLE"
    ip -6 route add local ::/0 dev lo table "$TPROXY_TABLE"
fi
# Reverse path filtering: keep rp_filter at 0 or 2 (loose) on CUSTOMER_IF.
