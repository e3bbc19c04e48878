#!/usr/bin/env bash
# Build llama.cpp's llama-server once per machine and cache it outside the repo (never committed).
#
# The sources come from the llama-cpp-python sdist on PyPI (it vendors llama.cpp), so nothing but
# the package registry is needed. About 8-9 minutes on 2 cores; later runs return at once.
#
#   bench/build_llama_server.sh            # prints the binary's path when done
#   OFFLOAD_LLAMA_SERVER=/path/to/llama-server bench/batch_llama_server.py   # use another build
set -euo pipefail
cd "$(dirname "$0")/.."

version="$(sed -n 's/^llama-cpp-python==//p' scripts/constraints.txt)"
version="${version:-0.3.36}"
cache="${OFFLOAD_CACHE_DIR:-$HOME/.cache/offload}"
target="$cache/llama-server"
if [ -x "$target" ]; then
  echo "$target"
  exit 0
fi
python="${PYTHON:-.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "build_llama_server: fetching the llama-cpp-python $version sdist..." >&2
"$python" -m pip download -q --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$version"
tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
echo "build_llama_server: building llama-server (about 9 minutes)..." >&2
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
  -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build "$work/build" --target llama-server -j "$(nproc)" >/dev/null
mkdir -p "$cache"
cp "$work/build/bin/llama-server" "$target.tmp"
mv "$target.tmp" "$target"
echo "$target"
