"""Batch offloading: many items through one task, at the servers' full speed, resumable.

::

    import offload

    async for r in offload.batch("summarize", "items.jsonl", output="out.jsonl", length="sentence"):
        print(r.id, r.ok, r.output)

    # or with explicit cleanup, and in-memory items:
    async with offload.batch("classify", ["crash on save", "add dark mode"],
                             labels=["bug", "feature"]) as run:
        async for r in run:
            ...

``batch(task, items, **options)`` returns a ``Batch``: an async iterator of ``ItemResult`` in
completion order. ``task`` is a built-in task, ``"ask"`` (a raw ``prompt`` template) or a user
template name. Keyword options are the task's own (``length``, ``labels``, ``target``…, as in
``offload.tasks``) and the task settings (``model``, ``local_only``, ``gate``, ``on_fail``…).
With ``output`` the results are also appended to a JSONL file, exactly once per input id; a
rerun skips ids already there. See ``engine`` (the run), ``inputs``, ``output``, ``schedule``,
``servers``, ``cache`` and ``progress`` for the parts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offload.batching.engine import Batch, BatchSpec
from offload.batching.inputs import Format, Item
from offload.batching.progress import Tally
from offload.batching.rows import ItemResult
from offload.tasks import SETTINGS

if TYPE_CHECKING:
    from offload.config import Config
    from offload.offloader import Offloader


def batch(
    task: str,
    items: str | os.PathLike[str] | Iterable[str | Mapping[str, Any]],
    *,
    output: str | os.PathLike[str] | None = None,
    offloader: Offloader | None = None,
    config: Config | None = None,
    id_field: str | None = None,
    text_field: str = "text",
    input_format: Format | None = None,
    concurrency: int | None = None,
    base_urls: Sequence[str] = (),
    cache: bool = True,
    cache_path: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    follow_symlinks: bool = False,
    patience: float = 30.0,
    notify: Callable[[str], None] | None = None,
    **options: Any,
) -> Batch:
    """Run ``task`` over ``items`` (a JSONL/CSV path, a directory, or strings/mappings).

    ``concurrency`` is requests in flight per server (default: the server's slot count, else
    probed); ``base_urls`` are several servers for LM Studio (or the chain's local provider);
    ``cache=False`` recomputes every item (fresh results still refresh the cache);
    ``retry_failed`` runs again the ids whose line in ``output`` carries an error;
    ``follow_symlinks`` lets a directory input follow links that lead out of it;
    ``patience`` is how long servers may fail with no item finishing before the run stops.
    """
    settings = {k: v for k, v in options.items() if k in SETTINGS}
    task_options = {k: v for k, v in options.items() if k not in SETTINGS}
    spec = BatchSpec(
        task=task,
        items=items,
        output=output,
        options=task_options,
        settings=settings,
        id_field=id_field,
        text_field=text_field,
        input_format=input_format,
        concurrency=concurrency,
        base_urls=tuple(base_urls),
        cache=cache,
        cache_path=Path(cache_path) if cache_path is not None else None,
        retry_failed=retry_failed,
        follow_symlinks=follow_symlinks,
        patience=patience,
    )
    return Batch(spec, offloader=offloader, config=config, notify=notify)


__all__ = ["Batch", "BatchSpec", "Item", "ItemResult", "Tally", "batch"]
