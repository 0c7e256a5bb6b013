#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers AMQP on 127.0.0.1:5672 (development and CI machines).
#
# Something already answering: nothing to do. Otherwise install Debian's rabbitmq-server if
# it is missing and start it detached; containers have no systemd, so no systemctl here.
# No plugins are enabled: the platform and its tests need plain AMQP and rabbitmqctl only.
# Idempotent: safe to run before every `make run` / `make test`.
set -euo pipefail

HOST=127.0.0.1
PORT=5672
WAIT_SECONDS="${XUEJI_BROKER_WAIT:-90}"
# rabbitmq-server and rabbitmqctl live in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

amqp_answers() {
    # A broker answers the AMQP 0-9-1 protocol header with Connection.Start: a method
    # frame (type 1) on channel 0. An open port alone could be anything.
    python3 - "$HOST" "$PORT" <<'PY'
import socket
import sys

try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as sock:
        sock.settimeout(3)
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        frame = sock.recv(7)
except OSError:
    sys.exit(1)
sys.exit(0 if frame[:3] == b"\x01\x00\x00" else 1)
PY
}

if amqp_answers; then
    echo "rabbitmq: answering on $HOST:$PORT"
    exit 0
fi

if ! command -v rabbitmq-server >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "rabbitmq: not installed and not root; install it with: sudo apt-get install -y rabbitmq-server" >&2
        exit 1
    fi
    echo "rabbitmq: installing rabbitmq-server (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends rabbitmq-server
    # The package's own start may have worked (a machine with an init system).
    if amqp_answers; then
        echo "rabbitmq: answering on $HOST:$PORT"
        exit 0
    fi
fi

echo "rabbitmq: starting (rabbitmq-server -detached)"
# Fails harmlessly when the node is already up but still booting; the wait below decides.
rabbitmq-server -detached || echo "rabbitmq: rabbitmq-server -detached returned $?; waiting anyway"

deadline=$((SECONDS + WAIT_SECONDS))
# await_startup returns once the node has booted; bounded so a broken node cannot hang us.
timeout "$WAIT_SECONDS" rabbitmqctl -q await_startup >/dev/null 2>&1 || true
until amqp_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "rabbitmq: no AMQP answer on $HOST:$PORT after ${WAIT_SECONDS}s." >&2
        echo "rabbitmq: see /var/log/rabbitmq/ and 'rabbitmqctl status'." >&2
        exit 1
    fi
    sleep 1
done
echo "rabbitmq: answering on $HOST:$PORT"
