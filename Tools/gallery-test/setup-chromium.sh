#!/usr/bin/env bash
# Installs Debian's Chromium and chromedriver for the gallery's UI test, once (idempotent); prints the
# driver's path. Needs root or sudo (CI runs as root).
set -euo pipefail
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing chromium and chromium-driver with apt-get" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >&2
fi
command -v chromedriver
