#!/usr/bin/env bash
# A loopback demo of mode fixed: an MTA, smtpgate in front of it, a few messages through, and what the
# administrator sees in the log. Cleans up after itself.
set -euo pipefail
BIN=${SMTPGATE_BIN:-$(pwd)/.build/debug/smtpgate}
work=$(mktemp -d /tmp/smtpgate-demo.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo: nothing listening on port $1" >&2; return 1
}
mta_port=$(free_port)
proxy_port=$(free_port)
mkdir -p "$work/mail"

cat > "$work/smtpgate.conf" <<CONF
# The demo: every connection to 127.0.0.1:$proxy_port is relayed to the MTA on 127.0.0.1:$mta_port.
proxy_name demo.smtpgate.test
mode fixed
bind_address 127.0.0.1
port $proxy_port
fixed_server 127.0.0.1
fixed_server_port $mta_port
max_per_host 4
timeout_idle 30
CONF

echo "== 1. configuration (smtpgate check-config)"
"$BIN" check-config "$work/smtpgate.conf" | grep -v '^#' | sed 's/^/   /'

python3 demo/mta.py 127.0.0.1 "$mta_port" "$work/mail" > "$work/mta.log" 2>&1 &
pids+=($!)
"$BIN" run --config "$work/smtpgate.conf" --log-file "$work/smtpgate.log" &
pids+=($!)
wait_port "$mta_port"
for _ in $(seq 1 100); do grep -q ' start ' "$work/smtpgate.log" 2>/dev/null && break; sleep 0.1; done

echo
echo "== 2. three clients send mail through the proxy"
swaks --server "127.0.0.1:$proxy_port" --helo client1.customer.test --from alice@customer.test \
      --to bob@example.test --header 'Subject: hello through smtpgate' --body 'First message.' >/dev/null
echo "   swaks: one message, one recipient"
swaks --server "127.0.0.1:$proxy_port" --pipeline --helo client2.customer.test --from carol@customer.test \
      --to dave@example.test,nobody@example.test --body 'Second message, pipelined.' >/dev/null || true
echo "   swaks --pipeline: two recipients, the MTA refuses nobody@ with 550"
python3 - "$proxy_port" <<'PY'
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client3.customer.test", timeout=10) as s:
    s.sendmail("erin@customer.test", ["frank@example.test"],
               b"Subject: dots\r\n\r\n.a line starting with a dot\r\n8-bit: \xc3\xa9t\xc3\xa9\r\n")
print("   smtplib: a message with a leading dot and 8-bit text")
PY
sleep 0.3

echo
echo "== 3. the proxy's log (open, transaction, close for each session)"
sed 's/^/   /' "$work/smtpgate.log"

echo
echo "== 4. what the MTA stored"
for f in "$work"/mail/*.eml; do
    echo "   --- $(basename "$f")"
    sed 's/^/   | /' "$f" | head -12
done
