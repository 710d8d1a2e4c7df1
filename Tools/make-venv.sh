#!/usr/bin/env bash
# Creates (once per requirements file content) a virtual environment in the checkout and prints its
# python: make-venv.sh VENV_DIR REQUIREMENTS_FILE. Development only (fixtures, peer benchmarks).
set -euo pipefail
venv=$1 requirements=$2
stamp="$venv/.requirements-$(sha256sum "$requirements" | cut -c1-16)"
if [ -e "$stamp" ]; then echo "$venv/bin/python"; exit 0; fi
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet -r "$requirements" >&2
touch "$stamp"
echo "$venv/bin/python"
