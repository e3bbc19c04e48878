#!/usr/bin/env bash
# The README's first command, after setup: one real offload task on a local model.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/offload ask --max-output-tokens 80 --temperature 0 \
  "Summarize this in one sentence: $(cat examples/local-models.txt)"
