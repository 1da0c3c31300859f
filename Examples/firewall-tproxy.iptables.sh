# SMTPGate firewall rules - scenario "TPROXY": smtpgate on the router, mode tproxy.
#
#   customer --(CUSTOMER_IF)--> router: TPROXY tcp/25 -> local socket :PROXY_PORT --> smtpgate --> real MTA
#
# Nothing is NATed: the TPROXY target hands the customer's connection to smtpgate's listening socket
# (opened with IP_TRANSPARENT / IPV6_TRANSPARENT) and the accepted socket's local address is the real
# destination.  Packets marked TPROXY_MARK are routed to the local host by the policy routing below.
# The "socket --transparent" rule marks packets of connections that already have a transparent socket
# here, which includes the replies to smtpgate's outgoing connections when "transparent_source yes"
# makes them keep the customer's source address.
# smtpgate's own outgoing connections leave through OUTPUT and are not intercepted.
# Pair with Examples/smtpgate-tproxy.conf.  Needs the xt_TPROXY and xt_socket modules.
: "${CUSTOMER_IF:?set CUSTOMER_IF to the interface the customers are on}"
: "${PROXY_PORT:=9199}"     # smtpgate's port (option "port")
: "${SMTP_PORT:=25}"        # the port that is intercepted
: "${TPROXY_MARK:=0x1}"     # firewall mark (a single bit) used for the policy routing
: "${TPROXY_TABLE:=100}"    # routing table that delivers marked packets locally
: "${IPV6:=yes}"            # yes: IPv6 as well (ip6tables, ip -6)

iptables -t mangle -N SMTPGATE_DIVERT
iptables -t mangle -A SMTPGATE_DIVERT -j MARK --set-mark "$TPROXY_MARK/$TPROXY_MARK"
iptables -t mangle -A SMTPGATE_DIVERT -j ACCEPT
iptables -t mangle -A PREROUTING -p tcp -m socket --transparent -j SMTPGATE_DIVERT
iptables -t mangle -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport "$SMTP_PORT" \
    -j TPROXY --on-port "$PROXY_PORT" --tproxy-mark "$TPROXY_MARK/$TPROXY_MARK"
ip rule add fwmark "$TPROXY_MARK/$TPROXY_MARK" lookup "$TPROXY_TABLE"
ip route add local 0.0.0.0/0 dev lo table "$TPROXY_TABLE"

if [ "$IPV6" = yes ]; then
    ip6tables -t mangle -N SMTPGATE_DIVERT
    ip6tables -t mangle -A SMTPGATE_DIVERT -j MARK --set-mark "$TPROXY_MARK/$TPROXY_MARK"
    ip6tables -t mangle -A SMTPGATE_DIVERT -j ACCEPT
    ip6tables -t mangle -A PREROUTING -p tcp -m socket --transparent -j SMTPGATE_DIVERT
    ip6tables -t mangle -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport "$SMTP_PORT" \
        -j TPROXY --on-port "$PROXY_PORT" --tproxy-mark "$TPROXY_MARK/$TPROXY_MARK"
    ip -6 rule add fwmark "$TPROXY_MARK/$TPROXY_MARK" lookup "$TPROXY_TABLE"
    ip -6 route add local ::/0 dev lo table "$TPROXY_TABLE"
fi
# Reverse path filtering: keep rp_filter at 0 or 2 (loose) on CUSTOMER_IF.
