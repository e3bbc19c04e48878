"""The embedded provider: llama.cpp inside this process (``provider``), its engine thread
(``engine``, ``run``), GGUF discovery (``gguf``) and chat text handling (``text``).

Importing this package does not import llama_cpp; the engine does that on first use.
"""

from offload.providers.embedded.provider import EmbeddedProvider

__all__ = ["EmbeddedProvider"]
