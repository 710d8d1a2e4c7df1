#!/usr/bin/env bash
# A throwaway PostgreSQL server for the gallery's tests, from Debian's package (installed once with
# apt-get if missing), on loopback only, with its files in DIR.
#   postgres.sh start DIR [OWNER_PID]   prints the URL to give --database: postgres://temper@127.0.0.1:PORT/temper;
#                                       with OWNER_PID, the server is also stopped when that process is gone
#                                       (a test process that crashed, or exited before its cleanup ran)
#   postgres.sh stop DIR                stops it (fast shutdown) and leaves DIR to the caller
# PostgreSQL refuses to run as root, so as root (CI) the server runs as the package's `postgres` user.
set -euo pipefail
command=${1:?usage: postgres.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: postgres.sh start|stop DIR}")

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing postgresql with apt-get" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
as=()
if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi

case "$command" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres "$dir"
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U temper -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off" start >&2 \
      || { cat "$dir/server.log" >&2; exit 1; }
    "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U temper temper
    if [ -n "${3:-}" ]; then
      owner=$3
      setsid nohup bash -c "while kill -0 $owner 2>/dev/null && [ -f '$dir/data/postmaster.pid' ]; do sleep 1; done
        [ ! -f '$dir/data/postmaster.pid' ] || ${as[*]} '$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 </dev/null &
    fi
    echo "postgres://temper@127.0.0.1:$port/temper"
    ;;
  stop)
    [ ! -f "$dir/data/postmaster.pid" ] || "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2
    ;;
  *) echo "usage: postgres.sh start|stop DIR" >&2; exit 2 ;;
esac
