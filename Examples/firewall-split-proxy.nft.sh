# SMTPGate firewall rules - scenario "split", the PROXY side, nftables variant
# (same as firewall-split-proxy.iptables.sh; read the description there).
# Only the routers reach PROXY_PORT; the helper's UDP answers are conntrack replies of the proxy's
# own queries (ct state established) and need nothing special.  Table "inet smtpgate_proxy" is
# replaced when this is applied again.
: "${ROUTER_NETS:?set ROUTER_NETS to the routers IPv4 addresses or networks, space-separated}"
: "${ROUTER_NETS6:=}"       # optional: the same for IPv6
: "${PROXY_PORT:=9199}"     # smtpgate's port (option "port")

SG_ALLOW=""
for sg_net in $ROUTER_NETS; do
    SG_ALLOW="$SG_ALLOW
        ip saddr $sg_net tcp dport $PROXY_PORT accept"
done
for sg_net in $ROUTER_NETS6; do
    SG_ALLOW="$SG_ALLOW
        ip6 saddr $sg_net tcp dport $PROXY_PORT accept"
done
nft -f - <<NFT
table inet smtpgate_proxy
delete table inet smtpgate_proxy
table inet smtpgate_proxy {
    chain input {
        type filter hook input priority filter; policy accept;
        ct state established,related accept
        $SG_ALLOW
        tcp dport $PROXY_PORT reject with tcp reset
    }
}
NFT
