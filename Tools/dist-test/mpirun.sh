#!/usr/bin/env bash
# mpirun from Debian's `openmpi-bin` (installed once with apt-get if missing), for the data-parallel
# test of MLX's MPI backend: mpirun.sh -np N COMMAND...
# MLX opens "libmpi.so", which only Debian's libopenmpi-dev (with a compiler toolchain) provides; without
# it the ranks get a private folder holding that link to the runtime's libmpi.so.40.
set -euo pipefail
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v mpirun >/dev/null; then
  echo "installing openmpi-bin with apt-get" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends openmpi-bin >&2
fi
options=(--oversubscribe)
[ "$(id -u)" -ne 0 ] || options+=(--allow-run-as-root)
# The cache is read once and searched as a string: `ldconfig -p | grep -q` (or an awk that exits at
# its first match) leaves ldconfig writing to a closed pipe, and under pipefail its SIGPIPE (141)
# is the pipeline's status, which ended this script once the list outgrew the pipe's buffer.
libraries=$(ldconfig -p)
if ! grep -q "libmpi.so " <<<"$libraries"; then
  runtime=$(awk '/libmpi\.so\.[0-9]+ / { print $NF; exit }' <<<"$libraries")
  [ -n "$runtime" ] || { echo "no libmpi.so.N found after installing openmpi-bin" >&2; exit 1; }
  links=$(mktemp -d)
  trap 'rm -rf "$links"' EXIT
  ln -s "$runtime" "$links/libmpi.so"
  export LD_LIBRARY_PATH="$links${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  options+=(-x LD_LIBRARY_PATH)
fi
mpirun "${options[@]}" "$@"
