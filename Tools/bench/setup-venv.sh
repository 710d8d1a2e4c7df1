#!/usr/bin/env bash
# Creates (once) the virtual environment the peer benchmarks run in: .venv-bench/ in the checkout.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-bench"
stamp="$venv/.requirements-$(sha256sum "$root/Tools/bench/requirements.txt" | cut -c1-16)"
if [ -e "$stamp" ]; then echo "$venv/bin/python"; exit 0; fi
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet -r "$root/Tools/bench/requirements.txt" >&2
touch "$stamp"
echo "$venv/bin/python"
