#!/usr/bin/env bash
# The virtual environment the peer benchmarks run in (.venv-bench/); prints its python.
root="$(cd "$(dirname "$0")/../.." && pwd)"
exec "$root/Tools/make-venv.sh" "$root/.venv-bench" "$root/Tools/bench/requirements.txt"
