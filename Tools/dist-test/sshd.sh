#!/usr/bin/env bash
# A throwaway OpenSSH server on loopback for the data-parallel tests over real ssh, from Debian's
# `openssh-server` (installed once with apt-get if missing), with its keys and config in DIR and
# only DIR's key allowed in, for the user running it.
#   sshd.sh start DIR [OWNER_PID]   prints the --through value: ssh -F DIR/ssh_config {host};
#                                   with OWNER_PID, the server also stops once that process is gone
#   sshd.sh stop DIR                stops it and leaves DIR to the caller
set -euo pipefail
command=${1:?usage: sshd.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: sshd.sh start|stop DIR}")

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; then
  echo "installing openssh-server with apt-get" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends openssh-server openssh-client >&2
fi

case "$command" in
  start)
    mkdir -p "$dir"
    chmod 700 "$dir"
    # sshd's privilege-separation folder (made by the service unit, which is not running here).
    [ -d /run/sshd ] || $sudo mkdir -p /run/sshd
    ssh-keygen -q -t ed25519 -N "" -f "$dir/host_key" >/dev/null
    ssh-keygen -q -t ed25519 -N "" -f "$dir/client_key" >/dev/null
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$dir/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
CONFIG
    cat >"$dir/ssh_config" <<CONFIG
Host *
  Port $port
  User $(id -un)
  IdentityFile $dir/client_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
CONFIG
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    for _ in $(seq 50); do [ -s "$dir/sshd.pid" ] && break; sleep 0.1; done
    [ -s "$dir/sshd.pid" ] || { cat "$dir/sshd.log" >&2; exit 1; }
    if [ -n "${3:-}" ]; then
      owner=$3
      setsid nohup bash -c "while kill -0 $owner 2>/dev/null && [ -f '$dir/sshd.pid' ]; do sleep 1; done
        [ ! -f '$dir/sshd.pid' ] || kill \$(cat '$dir/sshd.pid')" >/dev/null 2>&1 </dev/null &
    fi
    echo "ssh -F $dir/ssh_config {host}"
    ;;
  stop)
    if [ -f "$dir/sshd.pid" ]; then kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true; rm -f "$dir/sshd.pid"; fi
    ;;
  *) echo "usage: sshd.sh start|stop DIR" >&2; exit 2 ;;
esac
