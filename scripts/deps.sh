#!/usr/bin/env bash
# Installs what the build, tests, demo and bench need, only when it is missing.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have swaks || need_apt+=(swaks)
have smtp-sink || need_apt+=(postfix)
have haproxy || need_apt+=(haproxy)
have conntrack || need_apt+=(conntrack)
have iptables || need_apt+=(iptables)
have nft || need_apt+=(nftables)
have ip || need_apt+=(iproute2)
have groff || need_apt+=(groff-base)
[ -x /usr/sbin/clamd ] || need_apt+=(clamav-daemon)
have sigtool || need_apt+=(clamav)
have clamdscan || need_apt+=(clamdscan)
[ -x /usr/sbin/spamd ] || need_apt+=(spamd)
have spamc || need_apt+=(spamc)
pkg-config --exists libnetfilter_conntrack 2>/dev/null || need_apt+=(libnetfilter-conntrack-dev libmnl-dev pkg-config)

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "deps: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

need_pip=()
python3 -c 'import aiosmtpd' 2>/dev/null || need_pip+=(aiosmtpd)
python3 -c 'import pytest' 2>/dev/null || need_pip+=(pytest)
if [ ${#need_pip[@]} -gt 0 ]; then
    echo "deps: installing PyPI packages: ${need_pip[*]}"
    python3 -m pip install -q "${need_pip[@]}"
fi
