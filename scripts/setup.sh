#!/usr/bin/env bash
# Create .venv and install offload with the given extras (default: embedded).
#
# llama-cpp-python has no binary wheel for Linux x86-64, so pip compiles it (about 4-7 minutes on
# 2 cores). The wheel is built once per machine into $OFFLOAD_WHEEL_DIR (default
# ~/.cache/offload/wheels) and reused by every later setup, so only the first run pays for it.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-embedded}"
python="${PYTHON:-python3}"
wheels="${OFFLOAD_WHEEL_DIR:-$HOME/.cache/offload/wheels}"
llama_version="$(sed -n 's/^llama-cpp-python==//p' scripts/constraints.txt)"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "offload needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip

if [[ ",$extras," == *",embedded,"* ]]; then
  mkdir -p "$wheels"
  if ! ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl >/dev/null 2>&1; then
    echo "setup: building llama-cpp-python $llama_version once for this machine (4-7 minutes)..." >&2
    CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" "${pip[@]}" wheel -q --no-deps -w "$wheels" \
      "llama-cpp-python==$llama_version"
  fi
fi

"${pip[@]}" install -q --find-links "$wheels" -c scripts/constraints.txt -e ".[$extras]"
echo "setup: .venv ready with offload[$extras]" >&2
