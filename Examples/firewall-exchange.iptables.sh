# SMTPGate firewall rules - scenario "exchange": a masquerading firewall in front of an internal
# Exchange server, open to one remote Exchange server only, with smtpgate running on the firewall.
#
#   REMOTE --(EXT_IF)--> FW_IP: DNAT tcp/25 -> FW_IP:10025, 135 -> FW_IP:10135,
#                               10001 -> :20001, 10002 -> :20002, 10003 -> :20003
#                        smtpgate (Examples/smtpgate-exchange.conf) --> internal server
#   LAN --(masquerade as FW_IP)--> Internet
#
# Only connections from REMOTE are DNATed, one rule per port so that each outside port lands on
# its own smtpgate port (a DNAT to a port range would not keep the offsets).  smtpgate's ports
# are accepted in INPUT only for connections this DNAT made ("--ctstate DNAT") and dropped
# otherwise, so nobody reaches them directly.  smtpgate's own connections to the internal server
# leave through OUTPUT and are not NATed.  The forwards relay to the real ports of the internal
# server, so FORWARD needs no rule for them.
# Pair with Examples/smtpgate-exchange.conf (same ports).  Set the variables, then source this
# file from your firewall script (or run it with sh) once; it appends to the chains in place.
: "${EXT_IF:?set EXT_IF to the interface facing the Internet}"
: "${FW_IP:?set FW_IP to the firewall public IPv4 address (smtpgate bind_address)}"
: "${REMOTE:?set REMOTE to the remote Exchange server IPv4 address}"
: "${LAN:=}"                # optional: the internal network to masquerade, e.g. 198.51.100.0/24
# outside port:smtpgate port pairs (smtpgate's [listener smtp], [forward epmap], [forward exchange-rpc])
: "${PORT_MAP:=25:10025 135:10135 10001:20001 10002:20002 10003:20003}"

SG_LOCAL_PORTS=""
for pair in $PORT_MAP; do
    outside=${pair%%:*} inside=${pair#*:}
    iptables -t nat -A PREROUTING -i "$EXT_IF" -s "$REMOTE" -d "$FW_IP" -p tcp --dport "$outside" \
        -j DNAT --to-destination "$FW_IP:$inside"
    SG_LOCAL_PORTS="${SG_LOCAL_PORTS:+$SG_LOCAL_PORTS,}$inside"
done
iptables -A INPUT -i "$EXT_IF" -s "$REMOTE" -d "$FW_IP" -p tcp -m multiport --dports "$SG_LOCAL_PORTS" \
    -m conntrack --ctstate DNAT -j ACCEPT
iptables -A INPUT -i "$EXT_IF" -p tcp -m multiport --dports "$SG_LOCAL_PORTS" -j DROP

if [ -n "$LAN" ]; then
    # IP masquerading of the internal hosts' own traffic to the Internet.
    iptables -t nat -A POSTROUTING -o "$EXT_IF" -s "$LAN" -j MASQUERADE
    iptables -A FORWARD -i "$EXT_IF" -d "$LAN" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    iptables -A FORWARD -o "$EXT_IF" -s "$LAN" -j ACCEPT
    sysctl -q -w net.ipv4.ip_forward=1
fi
# To remove: the same lines with -D instead of -A.
# IPv6: this setup needs no NAT; give the internal server no public route and use a
# [forward] bound to the firewall's IPv6 address with "allow 2001:db8:..." instead.
