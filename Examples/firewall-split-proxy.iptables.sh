# SMTPGate firewall rules - scenario "split", the PROXY side (smtpgate in mode remote-udp or fixed).
#
# Nothing is NATed on the proxy host.  What matters:
#  - Only the routers may reach PROXY_PORT: anyone else who reaches it could use the proxy as a relay
#    (in remote-udp mode the helper would not know the connection, but do not rely on that).
#  - The helper's answers (UDP from ROUTER:114 back to the proxy's query port) are replies of the
#    proxy's own query, so conntrack sees them as ESTABLISHED: with a default-drop INPUT policy keep an
#    ESTABLISHED,RELATED accept rule and nothing else is needed for them.
#  - The proxy's outgoing connections to port 25 go out through a router; they do not enter that router
#    from its customer interface, so the router's DNAT leaves them alone.
: "${ROUTER_NETS:?set ROUTER_NETS to the routers IPv4 addresses or networks, space-separated}"
: "${ROUTER_NETS6:=}"       # optional: the same for IPv6
: "${PROXY_PORT:=9199}"     # smtpgate's port (option "port")

iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
for sg_net in $ROUTER_NETS; do
    iptables -A INPUT -s "$sg_net" -p tcp --dport "$PROXY_PORT" -j ACCEPT
done
iptables -A INPUT -p tcp --dport "$PROXY_PORT" -j REJECT --reject-with tcp-reset

ip6tables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
for sg_net in $ROUTER_NETS6; do
    ip6tables -A INPUT -s "$sg_net" -p tcp --dport "$PROXY_PORT" -j ACCEPT
done
ip6tables -A INPUT -p tcp --dport "$PROXY_PORT" -j REJECT --reject-with tcp-reset
