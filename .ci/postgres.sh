#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the search storage tests and print its SQLAlchemy URL.
#
#   export LSTMFPGA_PG_URL="$(.ci/postgres.sh)"
#
# Installs Debian's postgresql package when initdb is missing, creates a cluster in a fresh
# temporary folder, listening on 127.0.0.1 only (and a socket inside that folder), with a user and
# a database named lstmfpga whose password is random for every run. Everything but the URL goes to
# stderr. Stop it with the pg_ctl command it prints.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

bin_dir="$(find_bin)"
if [ -z "$bin_dir" ] || [ ! -x "$bin_dir/initdb" ]; then
    log "installing the postgresql package"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin_dir="$(find_bin)"
fi
if [ -z "$bin_dir" ] || [ ! -x "$bin_dir/initdb" ]; then
    log "no initdb found after installing postgresql"
    exit 1
fi

# initdb refuses to run as root: run the server as the postgres user then.
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    as_db() { runuser -u postgres -- "$@"; }
else
    as_db() { "$@"; }
fi

data_dir="$(mktemp -d "${TMPDIR:-/tmp}/lstmfpga-pg.XXXXXX")"
chmod 700 "$data_dir"
if [ "$(id -u)" = 0 ]; then chown postgres: "$data_dir"; fi
password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

as_db "$bin_dir/initdb" -D "$data_dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 >&2

port="${LSTMFPGA_PG_PORT:-54329}"
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if as_db "$bin_dir/pg_ctl" -D "$data_dir/data" -l "$data_dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $data_dir" start >&2; then
        break
    fi
    log "port $port did not work (see $data_dir/server.log); trying the next"
    port=$((port + 1))
    if [ "$attempt" = 10 ]; then exit 1; fi
done

as_db "$bin_dir/psql" -h "$data_dir" -p "$port" -U postgres -v ON_ERROR_STOP=1 -q -d postgres >&2 <<SQL
CREATE USER lstmfpga PASSWORD '$password';
CREATE DATABASE lstmfpga OWNER lstmfpga;
SQL

log "server running from $data_dir on 127.0.0.1:$port; stop it with:"
log "  $( [ "$(id -u)" = 0 ] && echo 'runuser -u postgres -- ')$bin_dir/pg_ctl -D $data_dir/data stop"
echo "postgresql+psycopg2://lstmfpga:$password@127.0.0.1:$port/lstmfpga"
