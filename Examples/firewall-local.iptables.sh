# SMTPGate firewall rules - scenario "local": smtpgate runs on the NAT router itself (mode netfilter).
#
#   customer --(CUSTOMER_IF)--> router: REDIRECT tcp/25 -> this host:PROXY_PORT --> smtpgate --> real MTA
#
# Customers' outgoing connections to port 25 that enter on CUSTOMER_IF are redirected to smtpgate's
# port on this host; smtpgate reads where each was going with SO_ORIGINAL_DST (IPv4) and
# IP6T_SO_ORIGINAL_DST (IPv6) and connects there itself.  The proxy's own connections to port 25 leave
# through OUTPUT, never through PREROUTING, so they are not redirected again.  A connection made
# straight to PROXY_PORT (not redirected) has the proxy itself as its original destination and is
# refused by smtpgate as a loop.
# Pair with Examples/smtpgate-local.conf (mode netfilter, bind_address ::, port 9199).
#
# Set the variables, then source this file from your firewall script (or run it with sh) once.
# iptables/ip6tables here may be either backend (nf_tables or legacy).
: "${CUSTOMER_IF:?set CUSTOMER_IF to the interface the customers are on}"
: "${PROXY_PORT:=9199}"     # smtpgate's port (option "port")
: "${SMTP_PORT:=25}"        # the port that is intercepted
: "${IPV6:=yes}"            # yes: the same for IPv6 (ip6tables)

iptables -t nat -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport "$SMTP_PORT" \
    -j REDIRECT --to-ports "$PROXY_PORT"
if [ "$IPV6" = yes ]; then
    ip6tables -t nat -A PREROUTING -i "$CUSTOMER_IF" -p tcp --dport "$SMTP_PORT" \
        -j REDIRECT --to-ports "$PROXY_PORT"
fi
# To remove: the same lines with -D instead of -A.
