"""The public surface: a sorted, complete ``__all__`` and a light ``import offload``."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import typing
from types import ModuleType

import offload
from offload.errors import OffloadError
from offload.types import StreamEvent


def test_all_is_sorted_and_resolves() -> None:
    names = [n for n in offload.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in names:
        assert getattr(offload, name) is not None


def test_all_equals_the_public_names() -> None:
    for name in offload.__all__:
        getattr(offload, name)  # resolve every lazy name into the module's namespace
    public = [
        name
        for name, value in vars(offload).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    ]
    assert offload.__all__ == sorted([*public, "__version__"])
    assert dir(offload) == offload.__all__


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_error_class_is_exported() -> None:
    for info in pkgutil.walk_packages(offload.__path__, "offload."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
    errors = {
        cls
        for cls in _subclasses(OffloadError) | {OffloadError}
        if cls.__module__.startswith("offload.")
        and not cls.__module__.startswith("offload.testing")
        and not cls.__name__.startswith("_")
    }
    assert len(errors) > 15
    for cls in errors:
        assert getattr(offload, cls.__name__) is cls, cls.__name__
        assert cls.__name__ in offload.__all__


def test_stream_event_types_are_exported() -> None:
    events = typing.get_args(StreamEvent)
    assert len(events) == 5  # text, reasoning, tool-call deltas, progress, end
    for event in events:
        assert getattr(offload, event.__name__) is event
    assert offload.StreamEvent == StreamEvent


def test_import_offload_is_light() -> None:
    code = (
        "import sys, offload, offload.cli; "
        "heavy = [m for m in ('httpx', 'llama_cpp', 'uvicorn', 'starlette', 'mcp', 'openai', 'anthropic') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_matches_package_metadata() -> None:
    from importlib.metadata import version

    assert offload.__version__ == version("offload")
