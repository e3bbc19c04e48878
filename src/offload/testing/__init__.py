"""Test doubles shipped with offload: faithful fakes of LM Studio, the OpenAI API and the Anthropic
API served over real loopback HTTP, an in-process scripted provider, and a loopback server runner.

``serve``/``start``/``RunningServer`` run any ASGI app on 127.0.0.1. The fakes are imported
lazily (on first attribute access) so that importing this package stays cheap and does not
pull in Starlette. Their server stack (Starlette, uvicorn) comes with the ``testing`` extra:
``pip install 'offload[testing]'``; without it, importing this package says so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from offload.testing import _extra  # noqa: F401  (first: fails early when the extra is missing)
from offload.testing._server import RunningServer, serve, start

if TYPE_CHECKING:
    from offload.testing._lmstudio_http import RecordedRequest
    from offload.testing._lmstudio_models import FakeModel
    from offload.testing._lmstudio_state import FakeConfig, FakeStats
    from offload.testing._lmstudio_text import FakeMessage, FakeTurn, Responder, default_responder
    from offload.testing.anthropic_fake import AnthropicFake
    from offload.testing.embedded_responder import embedded_responder
    from offload.testing.lmstudio_fake import LMStudioFake
    from offload.testing.openai_fake import OpenAIFake
    from offload.testing.scripted import ScriptedProvider

_LAZY = {
    "AnthropicFake": "offload.testing.anthropic_fake",
    "OpenAIFake": "offload.testing.openai_fake",
    "ScriptedProvider": "offload.testing.scripted",
    "embedded_responder": "offload.testing.embedded_responder",
    "LMStudioFake": "offload.testing.lmstudio_fake",
    "FakeModel": "offload.testing._lmstudio_models",
    "FakeTurn": "offload.testing._lmstudio_text",
    "FakeMessage": "offload.testing._lmstudio_text",
    "Responder": "offload.testing._lmstudio_text",
    "default_responder": "offload.testing._lmstudio_text",
    "FakeConfig": "offload.testing._lmstudio_state",
    "FakeStats": "offload.testing._lmstudio_state",
    "RecordedRequest": "offload.testing._lmstudio_http",
}

__all__ = [
    "AnthropicFake",
    "FakeConfig",
    "FakeMessage",
    "FakeModel",
    "FakeStats",
    "FakeTurn",
    "LMStudioFake",
    "OpenAIFake",
    "RecordedRequest",
    "Responder",
    "RunningServer",
    "ScriptedProvider",
    "default_responder",
    "embedded_responder",
    "serve",
    "start",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'offload.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
