#!/usr/bin/env bash
# Makes sure PostgreSQL accepts `postgres` over TCP on 127.0.0.1:5432 (development and CI machines).
#
# The test suite creates and drops its own databases there as user postgres without a
# password. Already working: nothing to do. Otherwise install Debian's postgresql if it is
# missing, start the cluster without systemd (containers have none) and, if TCP login as
# postgres still fails, trust 127.0.0.1 in that cluster's pg_hba.conf.
# That last step is for a local development/CI cluster only: never run this script on a
# server whose PostgreSQL holds real data (production uses deploy/compose.yaml).
# Idempotent: safe to run before every `make test`.
set -euo pipefail

URL="postgresql://postgres@127.0.0.1:5432/postgres"
WAIT_SECONDS="${XUEJI_POSTGRES_WAIT:-60}"
MARKER="xueji: trust local TCP for the development/CI cluster"

pg_login() {
    command -v psql >/dev/null 2>&1 && psql "$URL" -XAtq -c 'select 1' >/dev/null 2>&1
}

pg_accepting() {
    # Up and accepting connections, whatever the authentication says.
    command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 -t 2
}

wait_until() {
    local what="$1" check="$2" deadline=$((SECONDS + WAIT_SECONDS))
    until "$check"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "postgres: $what after ${WAIT_SECONDS}s; see /var/log/postgresql/." >&2
            return 1
        fi
        sleep 1
    done
}

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "postgres: $1 needs root (or do it yourself: $2)" >&2
        exit 1
    fi
}

if pg_login; then
    echo "postgres: accepting postgres@127.0.0.1:5432"
    exit 0
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    need_root "installing postgresql" "sudo apt-get install -y postgresql"
    echo "postgres: installing postgresql (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends postgresql
fi

version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
if [ -z "$version" ] || [ ! -d "/etc/postgresql/$version/main" ]; then
    # Server binaries without a cluster (e.g. created clusters were dropped): make one.
    need_root "creating a cluster" "pg_createcluster <version> main"
    version="${version:-$(ls /usr/lib/postgresql | sort -V | tail -n 1)}"
    echo "postgres: creating cluster $version/main"
    pg_createcluster "$version" main
fi

# Debian gives a new cluster the next free port when 5432 is taken; the tests expect 5432.
port="$(sed -n 's/^port *= *\([0-9]*\).*/\1/p' "/etc/postgresql/$version/main/postgresql.conf" 2>/dev/null || true)"
if [ -n "$port" ] && [ "$port" != "5432" ]; then
    echo "postgres: cluster $version/main is configured for port $port, not 5432;" >&2
    echo "postgres: set 'port = 5432' in /etc/postgresql/$version/main/postgresql.conf" >&2
    exit 1
fi

if ! pg_accepting; then
    need_root "starting the cluster" "pg_ctlcluster --skip-systemctl-redirect $version main start"
    echo "postgres: starting cluster $version/main"
    # Exits non-zero when the cluster already runs; the wait below decides.
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_until "not accepting connections on 127.0.0.1:5432" pg_accepting
fi

if pg_login; then
    echo "postgres: accepting postgres@127.0.0.1:5432"
    exit 0
fi

hba="/etc/postgresql/$version/main/pg_hba.conf"
if ! grep -qF "$MARKER" "$hba"; then
    need_root "editing $hba" "trust 127.0.0.1/32 for the local test cluster"
    echo "postgres: trusting 127.0.0.1 in $hba (development/CI cluster)"
    # pg_hba.conf is read top-down and the first matching line wins: put ours first.
    # Rewritten in place (cat >) so the file keeps its owner and mode.
    tmp="$(mktemp)"
    {
        echo "# $MARKER"
        echo "host    all    all    127.0.0.1/32    trust"
        cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba"
    rm -f "$tmp"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main reload
if ! wait_until "login as postgres over TCP still fails" pg_login; then
    echo "postgres: check that cluster $version/main listens on 127.0.0.1:5432 ($hba, postgresql.conf)." >&2
    exit 1
fi
echo "postgres: accepting postgres@127.0.0.1:5432"
