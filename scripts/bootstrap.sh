#!/usr/bin/env bash
# Install what Unico needs on a Debian 12 machine, idempotently: system packages, the Python venv,
# and running Redis/PostgreSQL. Run as root (apt-get). Prints only what it changes.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v sipp >/dev/null || need+=(sip-tester)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v ss >/dev/null || need+=(iproute2)
command -v redis-server >/dev/null || command -v redis-cli >/dev/null || need+=(redis-server)
command -v psql >/dev/null || need+=(postgresql)
# the console's browser tests drive Debian's Chromium through playwright (never `playwright install`)
[ -x /usr/bin/chromium ] || need+=(chromium)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    echo "bootstrap: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Redis (live state) on loopback, without persistence, if nothing answers yet.
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    echo "bootstrap: starting redis-server on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/unico.log
fi

# PostgreSQL (records in production; tested beside the SQLite default).
mkdir -p .unico
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "bootstrap: starting PostgreSQL"
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    [ -n "$version" ] || { echo "bootstrap: no PostgreSQL cluster found" >&2; exit 1; }
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
fi
# The tests need a role that may create databases. Where loopback is not trusted (a fresh install),
# give the postgres role a generated password kept in the git-ignored .unico/test-postgres.url.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 </dev/null; then
    if [ ! -s .unico/test-postgres.url ] || ! psql "$(cat .unico/test-postgres.url)" -Atc 'select 1' >/dev/null 2>&1; then
        password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
        su postgres -c "psql -q -c \"ALTER ROLE postgres PASSWORD '$password'\"" >/dev/null
        echo "postgresql://postgres:$password@127.0.0.1:5432/postgres" > .unico/test-postgres.url
        chmod 600 .unico/test-postgres.url
        echo "bootstrap: PostgreSQL test credentials written to .unico/test-postgres.url"
    fi
fi

# The Python environment.
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.unico-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing Python packages"
    .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
