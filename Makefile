# The two commands of the README. Both set everything up from nothing (see scripts/setup.sh).
.PHONY: demo test lint bench

# Set up and run a real offload task on a local model (LM Studio if it runs, else the embedded engine).
demo:
	@./scripts/setup.sh embedded
	@./scripts/demo.sh

# Set up and run the whole test suite: lint, types, unit, end-to-end and real-inference tests.
test:
	@./scripts/setup.sh embedded,dev,mcp
	@./scripts/test-deps.sh
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy
	.venv/bin/pytest

bench:
	.venv/bin/python bench/startup.py
