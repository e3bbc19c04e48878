"""GGUF model files for the embedded provider: a small header reader and the ``ModelInfo`` built from it.

Reading a GGUF header in pure Python needs no inference engine (listing works without
``llama-cpp-python``) and costs a few milliseconds: only the key/value section at the start of
the file is parsed, through ``mmap`` so the weights are never read. Array values (the
tokenizer vocabulary) are skipped, not decoded. Results are cached per path, size and mtime.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"

# GGUF value types: id -> struct format of one scalar (strings and arrays handled apart).
_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?"}
_SCALARS.update({10: "<Q", 11: "<q", 12: "<d"})
_STRING, _ARRAY = 8, 9

# llama.cpp's ``llama_ftype`` (``general.file_type``) -> the usual quantization name.
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}
_QUANT_IN_NAME = re.compile(r"(?<![A-Za-z0-9])(I?Q\d_[A-Z0-9_]*?|BF16|F16|F32)(?=[.\-]|$)", re.IGNORECASE)


class GGUFError(ValueError):
    """The file is not a GGUF model this reader understands."""


class _Reader:
    """Sequential little-endian reads over a memory-mapped file."""

    def __init__(self, buf: mmap.mmap) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        size = self.unpack("<Q")
        raw = self.buf[self.pos : self.pos + size]
        self.pos += size
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.pos += 8 + struct.unpack_from("<Q", self.buf, self.pos)[0]

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            return self.skip_array()
        raise GGUFError(f"unknown GGUF value type {vtype}")

    def skip_array(self) -> list[Any]:
        """Skip an array value; returns ``[]`` (arrays are never needed for listing)."""
        etype, count = self.unpack("<I"), self.unpack("<Q")
        if etype in _SCALARS:
            self.pos += count * struct.calcsize(_SCALARS[etype])
        elif etype == _STRING:
            for _ in range(count):
                self.skip_string()
        else:
            for _ in range(count):
                self.value(etype)
        return []


def _parse(buf: mmap.mmap) -> dict[str, Any]:
    reader = _Reader(buf)
    if buf[:4] != GGUF_MAGIC:
        raise GGUFError("not a GGUF file (bad magic)")
    reader.pos = 4
    version = reader.unpack("<I")
    if version < 2:
        raise GGUFError(f"GGUF version {version} is too old (need 2 or newer)")
    reader.unpack("<Q")  # tensor count
    kv_count = reader.unpack("<Q")
    out: dict[str, Any] = {}
    for _ in range(kv_count):
        key = reader.string()
        out[key] = reader.value(reader.unpack("<I"))
    return out


@lru_cache(maxsize=256)
def _cached(path: str, size: int, mtime_ns: int) -> Mapping[str, Any]:
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            return _parse(buf)
        except (struct.error, IndexError) as exc:
            raise GGUFError(f"truncated GGUF header: {exc}") from None


def read_metadata(path: str | Path) -> Mapping[str, Any]:
    """The scalar key/values of a GGUF header (arrays map to ``[]``). Raises ``GGUFError``/``OSError``."""
    stat = Path(path).stat()
    return _cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def architecture(meta: Mapping[str, Any]) -> str | None:
    """``general.architecture`` (``llama``, ``gemma3`` …)."""
    arch = meta.get("general.architecture")
    return str(arch) if arch else None


def context_length(meta: Mapping[str, Any]) -> int | None:
    """The trained context window (``<arch>.context_length``)."""
    value = meta.get(f"{architecture(meta)}.context_length")
    return int(value) if isinstance(value, int) else None


def quantization(meta: Mapping[str, Any], filename: str) -> str | None:
    """The quantization name from ``general.file_type``, else guessed from the file name."""
    file_type = meta.get("general.file_type")
    if isinstance(file_type, int) and file_type in FILE_TYPES:
        return FILE_TYPES[file_type]
    match = _QUANT_IN_NAME.search(Path(filename).stem)
    return match.group(1).upper() if match else None


def has_chat_template(meta: Mapping[str, Any]) -> bool:
    """True when the file carries its own chat template."""
    return bool(meta.get("tokenizer.chat_template"))
