# SMTPGate firewall rules - scenario "local", nftables variant (same as firewall-local.iptables.sh).
#
#   customer --(CUSTOMER_IF)--> router: redirect tcp/25 -> this host:PROXY_PORT --> smtpgate --> real MTA
#
# Customers' outgoing connections to port 25 entering on CUSTOMER_IF are redirected to smtpgate on this
# host (mode netfilter reads SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST).  The proxy's own outgoing
# connections leave through the output hook and are not redirected.
# Everything lives in its own table "inet smtpgate_local": applying this again replaces it, and
# "nft delete table inet smtpgate_local" removes it.
# Pair with Examples/smtpgate-local.conf.
: "${CUSTOMER_IF:?set CUSTOMER_IF to the interface the customers are on}"
: "${PROXY_PORT:=9199}"     # smtpgate's port (option "port")
: "${SMTP_PORT:=25}"        # the port that is intercepted
: "${IPV6:=yes}"            # yes: IPv6 as well

if [ "$IPV6" = yes ]; then SG_FAMILIES="ipv4, ipv6"; else SG_FAMILIES="ipv4"; fi
nft -f - <<NFT
table inet smtpgate_local
delete table inet smtpgate_local
table inet smtpgate_local {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "$CUSTOMER_IF" meta nfproto { $SG_FAMILIES } tcp dport $SMTP_PORT redirect to :$PROXY_PORT
    }
}
NFT
