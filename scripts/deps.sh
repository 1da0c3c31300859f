#!/usr/bin/env bash
# Installs what the build, tests, demo and bench need, only when it is missing. Commands are checked by
# name and Perl and Python modules by loading them: a package installed without its recommends (swaks
# without IO::Socket::INET6, say) leaves the command present and the feature broken.
# The Python peers come from Debian, for Debian's own python3 (the Makefile's PYTHON): stock Debian 12
# refuses `pip install` into the system Python (PEP 668).
set -euo pipefail

PYTHON=${PYTHON:-/usr/bin/python3}
need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
perl_has() { perl -M"$1" -e 1 >/dev/null 2>&1; }
python_has() { "$PYTHON" -c "import $1" >/dev/null 2>&1; }

have swaks || need_apt+=(swaks)
perl_has IO::Socket::INET6 || need_apt+=(libio-socket-inet6-perl)   # swaks -6
perl_has Net::SSLeay || need_apt+=(libnet-ssleay-perl)              # swaks -tls
have smtp-sink || need_apt+=(postfix)
have haproxy || need_apt+=(haproxy)
have conntrack || need_apt+=(conntrack)
have iptables || need_apt+=(iptables)
have nft || need_apt+=(nftables)
have ip || need_apt+=(iproute2)
have prlimit || need_apt+=(util-linux)
have groff || need_apt+=(groff-base)
[ -x /usr/sbin/clamd ] || need_apt+=(clamav-daemon)
have sigtool || need_apt+=(clamav)
have clamdscan || need_apt+=(clamdscan)
[ -x /usr/sbin/spamd ] || need_apt+=(spamd)
have spamc || need_apt+=(spamc)
pkg-config --exists libnetfilter_conntrack 2>/dev/null || need_apt+=(libnetfilter-conntrack-dev libmnl-dev pkg-config)
pkg-config --exists sqlite3 2>/dev/null || need_apt+=(libsqlite3-dev pkg-config)   # state_store
pkg-config --exists libpcre2-8 2>/dev/null || need_apt+=(libpcre2-dev pkg-config)   # regex_* (PCRE)
# Not pkg-config: Debian's libunbound.pc requires libevent's, which libunbound-dev does not pull in.
[ -f /usr/include/unbound.h ] || need_apt+=(libunbound-dev)   # the DNS resolver (DNSBL, SPF, restrictions)
[ -x /usr/sbin/dnsmasq ] || need_apt+=(dnsmasq-base)   # the resolver tests' DNS server (the binary, no service)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql)   # the PostgreSQL store's tests (a throw-away server)
[ -x /usr/sbin/postgrey ] || need_apt+=(postgrey)   # the policy service tests' greylisting server (run as a child)
[ -x /usr/sbin/rinetd ] || need_apt+=(rinetd)   # the forward tests' peer: rinetd 0.73 run in the foreground (-f)
have promtool || need_apt+=(prometheus)   # promtool check metrics on /metrics (the server itself is not run)
have valgrind || need_apt+=(valgrind)   # make bench's instructions section (callgrind)
have strip || need_apt+=(binutils)   # the instructions section counts strip --strip-debug copies
have chromium || need_apt+=(chromium)   # the status page test's headless browser
[ -d /usr/share/fonts/truetype/dejavu ] || need_apt+=(fonts-dejavu-core)   # text in the status page's screenshot
have openssl || need_apt+=(openssl)   # the forward tests' TLS service (s_server) and throw-away certificate
[ -x "$PYTHON" ] || need_apt+=(python3)
python_has aiosmtpd || need_apt+=(python3-aiosmtpd)
python_has pytest || need_apt+=(python3-pytest)
python_has prometheus_client || need_apt+=(python3-prometheus-client)   # parses /metrics as Prometheus would

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "deps: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # postgrey's package starts and enables its own daemon (on 10023); the tests start theirs.
    if [[ " ${need_apt[*]} " == *" postgrey "* ]]; then
        { systemctl disable --now postgrey.service || { invoke-rc.d postgrey stop; update-rc.d postgrey disable; }; } >/dev/null 2>&1 || true
    fi
    # so does prometheus's (on 9090); only its promtool is used.
    if [[ " ${need_apt[*]} " == *" prometheus "* ]]; then
        { systemctl disable --now prometheus.service || { invoke-rc.d prometheus stop; update-rc.d prometheus disable; }; } >/dev/null 2>&1 || true
    fi
    # so does rinetd's (with /etc/rinetd.conf); the tests run their own with their own file.
    if [[ " ${need_apt[*]} " == *" rinetd "* ]]; then
        { systemctl disable --now rinetd.service || { invoke-rc.d rinetd stop; update-rc.d rinetd disable; }; } >/dev/null 2>&1 || true
    fi
fi

missing=()
perl_has IO::Socket::INET6 || missing+=("perl IO::Socket::INET6")
perl_has Net::SSLeay || missing+=("perl Net::SSLeay")
python_has aiosmtpd || missing+=("$PYTHON: aiosmtpd")
python_has pytest || missing+=("$PYTHON: pytest")
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: still missing after install: ${missing[*]}" >&2
    exit 1
fi
