# SMTPGate firewall rules - scenario "split", the ROUTER side (the proxy runs on its own host).
#
#   customer --(CUSTOMER_IF)--> router: DNAT tcp/25 -> PROXY_IP:PROXY_PORT, SNAT -> ROUTER_IP
#                                  |                     smtpgate (mode remote-udp) --> real MTA
#                                  +-- smtpgate-helper on ROUTER_IP:114 <-- UDP query from the proxy
#
# The proxy sees every intercepted connection as coming from ROUTER_IP (the SNAT) and asks the
# smtpgate-helper at that address (UDP HELPER_PORT) for the conntrack entry: the real client and the
# real destination.  Only traffic entering from CUSTOMER_IF is redirected, so the proxy's own
# connections to port 25 (which pass through this router on their way out) are not redirected again.
# The SNAT matters: the proxy's replies must come back through this router (un-NAT), and the proxy
# finds the router to ask from the connection's source address.
# The same rules also serve mode fixed (every connection to one MTA; no helper needed).
# Run smtpgate-helper here: smtpgate-helper --listen ROUTER_IP --allow PROXY_IP/32 --key-file ...
# IPv6: set PROXY_IP6 and ROUTER_IP6 (needs a helper listening on ROUTER_IP6 and the v2 protocol).
: "${CUSTOMER_IF:?set CUSTOMER_IF to the interface the customers are on}"
: "${PROXY_IP:?set PROXY_IP to the proxy's IPv4 address}"
: "${ROUTER_IP:?set ROUTER_IP to this router's IPv4 address on the proxy's side}"
: "${PROXY_PORT:=9199}"     # smtpgate's port (option "port")
: "${SMTP_PORT:=25}"        # the port that is intercepted
: "${HELPER_PORT:=114}"     # smtpgate-helper's UDP port (option "remote_port" on the proxy)
: "${PROXY_IP6:=}"          # optional: the proxy's IPv6 address
: "${ROUTER_IP6:=}"         # optional: this router's IPv6 address on the proxy's side

iptables -t nat -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport "$SMTP_PORT" \
    -j DNAT --to-destination "$PROXY_IP:$PROXY_PORT"
iptables -t nat -A POSTROUTING -d "$PROXY_IP" -p tcp --dport "$PROXY_PORT" -m conntrack --ctstate DNAT \
    -j SNAT --to-source "$ROUTER_IP"
# The helper answers only its --allow list, but keep the port closed to everyone else as well.
iptables -I INPUT -s "$PROXY_IP" -d "$ROUTER_IP" -p udp --dport "$HELPER_PORT" -j ACCEPT

if [ -n "$PROXY_IP6" ] && [ -n "$ROUTER_IP6" ]; then
    ip6tables -t nat -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport "$SMTP_PORT" \
        -j DNAT --to-destination "[$PROXY_IP6]:$PROXY_PORT"
    ip6tables -t nat -A POSTROUTING -d "$PROXY_IP6" -p tcp --dport "$PROXY_PORT" -m conntrack --ctstate DNAT \
        -j SNAT --to-source "$ROUTER_IP6"
    ip6tables -I INPUT -s "$PROXY_IP6" -d "$ROUTER_IP6" -p udp --dport "$HELPER_PORT" -j ACCEPT
fi
# Several proxies: give each group of customers (interface or source range) its own DNAT target.
