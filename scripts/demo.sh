#!/usr/bin/env bash
# The README's first command, after setup: one real offload task on a local model — LM Studio when
# it is running, otherwise the embedded engine — then the ledger line that records it.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "\$ offload summarize --length sentence @examples/local-models.txt" >&2
.venv/bin/offload summarize --length sentence --verbose @examples/local-models.txt
echo >&2
echo "\$ offload log --limit 1" >&2
.venv/bin/offload log --limit 1
