# SMTPGate firewall rules - scenario "exchange", nftables variant (same as
# firewall-exchange.iptables.sh; read the description there).
#
#   REMOTE --(EXT_IF)--> FW_IP: dnat tcp/25 -> FW_IP:10025, 135 -> FW_IP:10135,
#                               10001 -> :20001, 10002 -> :20002, 10003 -> :20003
#                        smtpgate (Examples/smtpgate-exchange.conf) --> internal server
#   LAN --(masquerade as FW_IP)--> Internet
#
# Only connections from REMOTE are DNATed, each outside port to its own smtpgate port (a map, so
# the offsets are kept).  smtpgate's ports are accepted only for connections this table DNATed
# ("ct status dnat") and dropped otherwise.  Everything lives in table "inet smtpgate_exchange":
# applying this again replaces it, "nft delete table inet smtpgate_exchange" removes it.  Its
# chains accept by default; a drop policy in another table of yours still applies, so open the
# same ports there as well.
: "${EXT_IF:?set EXT_IF to the interface facing the Internet}"
: "${FW_IP:?set FW_IP to the firewall public IPv4 address (smtpgate bind_address)}"
: "${REMOTE:?set REMOTE to the remote Exchange server IPv4 address}"
: "${LAN:=}"                # optional: the internal network to masquerade, e.g. 198.51.100.0/24
# outside port : smtpgate port (smtpgate's [listener smtp], [forward epmap], [forward exchange-rpc])
: "${PORT_MAP:=25 : 10025, 135 : 10135, 10001 : 20001, 10002 : 20002, 10003 : 20003}"
: "${OUTSIDE_PORTS:=25, 135, 10001-10003}"       # the outside ports of PORT_MAP
: "${LOCAL_PORTS:=10025, 10135, 20001-20003}"     # the smtpgate ports of PORT_MAP

# With LAN set, the internal hosts' own traffic is masqueraded; letting it through a forward
# chain with a drop policy is your firewall's business (an accept here cannot override it).
SG_MASQ=""
if [ -n "$LAN" ]; then
    SG_MASQ="oifname \"$EXT_IF\" ip saddr $LAN masquerade"
    sysctl -q -w net.ipv4.ip_forward=1
fi
nft -f - <<NFT
table inet smtpgate_exchange
delete table inet smtpgate_exchange
table inet smtpgate_exchange {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "$EXT_IF" ip saddr $REMOTE ip daddr $FW_IP tcp dport { $OUTSIDE_PORTS } dnat ip to $FW_IP : tcp dport map { $PORT_MAP }
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        $SG_MASQ
    }
    chain input {
        type filter hook input priority filter; policy accept;
        iifname "$EXT_IF" ip saddr $REMOTE ip daddr $FW_IP tcp dport { $LOCAL_PORTS } ct status dnat accept
        iifname "$EXT_IF" tcp dport { $LOCAL_PORTS } drop
    }
}
NFT
