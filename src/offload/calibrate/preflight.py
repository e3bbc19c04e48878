"""Everything ``offload calibrate`` checks before any model is called, and what it settles.

``plan`` reads the samples (every item needs an id and its text), takes the expected outputs
when every sample carries one, derives classify's labels from them when none are given, lets
the task validate its options, and resolves the models: the local candidates (default: the
local models of the task's chain), the reference (default: its first hosted model) and the
judge (default: the reference). A hosted reference or judge under local-only, a model offload
does not know, or a hosted one without a key is one clear error, before any call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offload.errors import InputError, LocalOnlyRefused, OffloadError

if TYPE_CHECKING:
    from offload.batching.inputs import Item
    from offload.config import Config

LABEL_TASKS = ("classify",)
FIELD_TASKS = ("extract",)


@dataclass(frozen=True)
class CalibrateSpec:
    """What to calibrate: a task, its samples and options, the models, and the quality bar."""

    task: str
    samples: str
    local: tuple[str, ...] = ()
    reference: str | None = None
    judge: str | None = None
    min_quality: float = 0.9
    options: Mapping[str, Any] = field(default_factory=dict)
    expected_field: str = "expected"
    id_field: str | None = None
    text_field: str = "text"
    work_dir: Path | None = None
    local_only: bool = False
    concurrency: int | None = None


@dataclass(frozen=True)
class Plan:
    """What ``plan`` checked and settled: the items, options, models and where answers go."""

    items: list[Item]
    options: dict[str, Any]
    local: tuple[str, ...]
    reference: str
    judge: str | None
    local_only: bool
    expected: dict[str, Any] | None
    work_dir: Path


def plan(spec: CalibrateSpec, config: Config) -> Plan:
    """Everything checked before any model is called; raises one clear error otherwise."""
    from offload.batching.inputs import read_input
    from offload.batching.jobs import make_job

    read = read_input(spec.samples, id_field=spec.id_field, text_field=spec.text_field)
    if read.problems:
        shown = "; ".join(str(p) for p in read.problems[:3])
        more = f" (and {len(read.problems) - 3} more)" if len(read.problems) > 3 else ""
        raise InputError(
            f"{spec.samples}: {len(read.problems)} sample(s) lack what {spec.task} needs: {shown}{more}",
            remedy=f"every sample needs an id and a {spec.text_field!r} field (see --id-field/--text-field)",
        )
    if not read.items:
        raise InputError(f"{spec.samples} has no samples", remedy="give a JSONL/CSV file or a directory")
    items = read.items
    expected = _expected(items, spec.expected_field)
    options = dict(spec.options)
    if spec.task in LABEL_TASKS and not options.get("labels") and expected:
        options["labels"] = sorted({str(v) for v in expected.values()})
    make_job(spec.task, options)  # the task's own option errors, before any call

    chain = config.chain(task=spec.task)
    local = tuple(spec.local) or tuple(str(r) for r in chain if config.is_local(r))
    if not local:
        raise InputError(
            f"no local candidate to calibrate for {spec.task}",
            remedy="name one or more with --local REF (e.g. --local lmstudio/auto)",
        )
    reference = spec.reference or next((str(r) for r in chain if not config.is_local(r)), None)
    if reference is None:
        raise InputError(
            f"no reference model for {spec.task}: its chain has no hosted model",
            remedy="name one with --reference REF (a hosted model, or your strongest local one)",
        )
    judge = spec.judge or reference
    local_only = spec.local_only or config.settings.local_only or bool(config.task(spec.task).local_only)
    for role, ref in (("candidate", r) for r in local):
        _check_ref(config, role, ref, local_only)
    _check_ref(config, "reference", reference, local_only)
    if spec.task not in (*LABEL_TASKS, *FIELD_TASKS) or (spec.task in FIELD_TASKS and expected is None):
        _check_ref(config, "judge", judge, local_only)
    work = spec.work_dir or Path(f"{os.fspath(spec.samples).rstrip('/')}.calibrate")
    return Plan(items, options, local, reference, judge, local_only, expected, work)


def _expected(items: Sequence[Item], name: str) -> dict[str, Any] | None:
    values = {item.key: item.fields.get(name) for item in items}
    if all(v is not None and v != "" for v in values.values()):
        return values
    return None


def _check_ref(config: Config, role: str, ref: str, local_only: bool) -> None:
    try:
        resolved = config.resolve(ref)
    except OffloadError as exc:
        raise InputError(f"the {role} {ref!r} is not a model offload knows: {exc.message}") from exc
    provider = config.providers.get(resolved.provider)
    if provider is None:
        raise InputError(f"the {role} {ref} names no configured provider {resolved.provider!r}")
    if provider.local:
        return
    if local_only:
        raise LocalOnlyRefused(
            [str(resolved)],
            remedy=f"local-only mode is on: choose a local {role} (e.g. your strongest local model)",
        )
    if not provider.api_key:
        raise InputError(
            f"the {role} {resolved} is unavailable: provider {provider.id!r} has no API key",
            remedy=f"set its key (e.g. {provider.id.upper()}_API_KEY) or choose another {role}",
        )
