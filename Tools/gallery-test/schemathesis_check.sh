#!/usr/bin/env bash
# Fuzzes a running gallery's API with schemathesis against the OpenAPI document it serves
# (GalleryOpenAPI.swift at /openapi.json): no request may get a 5xx, and every response must match the
# document (status code, content type, headers, body schema). Exits non-zero on any failure.
#
# Usage: Tools/gallery-test/schemathesis_check.sh BASE_URL [SCHEMATHESIS]
#   BASE_URL      a gallery on loopback, e.g. http://127.0.0.1:8080 (any other host is refused).
#   SCHEMATHESIS  the schemathesis executable, or a python that has it installed; default: $SCHEMATHESIS,
#                 else `schemathesis` on PATH. Make one (the script does not) with
#                   python=$(Tools/make-venv.sh .venv-gallery-test Tools/gallery-test/requirements.txt)
# Environment:
#   TEMPER_GALLERY_TOKEN  sent as a bearer token (for a gallery bound beyond loopback, reached on loopback).
#   MAX_EXAMPLES          cases per operation in the fuzzing phase (default 30; the coverage phase adds its
#                         own fixed set): about 40 s in all against a local stand-in on 2 cores.
#   SEED                  the generator's seed (default 1, so runs repeat).
#   REPORT_DIR            if set, a JUnit report is written there.
# Run it against a throwaway data folder: it uploads datasets. Development and CI only.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
base_url=${1%/}
runner=${2:-${SCHEMATHESIS:-schemathesis}}

# Loopback only: the fuzzer sends thousands of requests and must never reach another machine.
if ! [[ $base_url =~ ^http://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|\[::1\])(:[0-9]+)?$ ]]; then
    echo "schemathesis_check: $base_url is not an http:// loopback address (127.0.0.0/8, localhost, [::1])" >&2
    exit 2
fi

if [[ $(basename "$runner") == python* ]]; then
    command=("$runner" -m schemathesis.cli)
else
    command=("$runner")
fi
if ! "${command[@]}" --version >/dev/null 2>&1; then
    echo "schemathesis_check: cannot run schemathesis as '${command[*]}'" >&2
    exit 2
fi

arguments=(
    run "$base_url/openapi.json" --url "$base_url"
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
    --phases examples,coverage,fuzzing
    --max-examples "${MAX_EXAMPLES:-30}" --seed "${SEED:-1}" --workers 1
    --request-timeout 30 --max-redirects 0 --wait-for-schema 30
    --generation-database none --no-color
)
if [ -n "${TEMPER_GALLERY_TOKEN:-}" ]; then
    arguments+=(--header "Authorization: Bearer $TEMPER_GALLERY_TOKEN")
fi
if [ -n "${REPORT_DIR:-}" ]; then
    arguments+=(--report junit --report-dir "$REPORT_DIR")
fi

# No proxy: requests go straight to the loopback gallery.
unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY
export NO_PROXY='*' no_proxy='*'
echo "schemathesis_check: ${command[*]} ${arguments[*]/#Authorization: Bearer */Authorization: Bearer ***}" >&2
exec "${command[@]}" "${arguments[@]}"
