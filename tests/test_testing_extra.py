"""``offload.testing`` needs the ``testing`` extra (Starlette, uvicorn) and says how to get it."""

from __future__ import annotations

import subprocess
import sys

HIDE_AND_IMPORT = """
import sys
sys.modules["{hidden}"] = None  # what an install without it looks like to the import system
try:
    import offload.testing
except ImportError as exc:
    print(exc)
else:
    print("imported")
"""


def import_without(hidden: str) -> str:
    code = HIDE_AND_IMPORT.format(hidden=hidden)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_without_starlette_the_error_names_the_extra() -> None:
    message = import_without("starlette")
    assert "pip install 'offload[testing]'" in message
    assert "starlette" in message


def test_without_uvicorn_the_error_names_the_extra() -> None:
    assert "pip install 'offload[testing]'" in import_without("uvicorn")


def test_the_product_imports_without_the_extra() -> None:
    code = (
        "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
        "import offload, offload.offloader, offload.http, offload.providers.openai_compat\n"
        "from offload.cli import main\n"
        "print('ok')"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "ok", run.stderr
