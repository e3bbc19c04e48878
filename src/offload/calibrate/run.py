"""One calibration run: each model over the samples (after ``preflight``), then scores and the pick.

Every model (each local candidate, then the reference) runs the task over the samples through
the batch engine with a one-model chain and ``on_fail="warn"``, so its raw answer and the gate's
verdict are both kept. Its answers land in ``<work dir>/<model>.jsonl``: a rerun resumes where an
interrupted one stopped, and cached answers are reused. Free-text tasks are then judged pairwise
against the yardstick (``judge``); verdicts are appended to ``<work dir>/judge-<model>.jsonl`` one
line per item, so a resumed run never judges an item twice.

The yardstick is the expected output when every sample carries one (``--expected-field``),
otherwise the reference model's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from offload.calibrate import judge as judging
from offload.calibrate.metrics import accuracy, field_counts, label_score, macro_f1, mean, sum_counts
from offload.calibrate.preflight import FIELD_TASKS, LABEL_TASKS, CalibrateSpec, Plan, plan
from offload.calibrate.table import Recommendation, Row, Scored, recommend, summarize

if TYPE_CHECKING:
    from offload.config import Config
    from offload.offloader import Offloader

JUDGE_PARALLEL = 4
SHOWN_DISAGREEMENTS = 25
RUBRICS = {
    "summarize": "Is the summary faithful to the text, complete on what matters, and concise?",
    "rewrite": "Does the rewrite keep the meaning and follow the instruction?",
    "translate": "Is the translation accurate, complete and natural in the target language?",
    "review": "Does the review find the real problems, with correct and useful remarks?",
    "brainstorm": "Are the ideas relevant, varied and useful?",
}


@dataclass(frozen=True)
class Disagreement:
    """An item where a candidate's answer fell short of the yardstick."""

    id: str
    text: str
    answer: str
    yardstick: str
    score: float


@dataclass
class Calibration:
    """The result: one row per model, the recommendation, and the items worth a look."""

    task: str
    reference: str
    judge: str | None
    yardstick: str
    min_quality: float
    rows: list[Row]
    reference_row: Row
    recommendation: Recommendation
    disagreements: dict[str, list[Disagreement]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    work_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        return {
            "task": self.task,
            "reference": self.reference,
            "judge": self.judge,
            "yardstick": self.yardstick,
            "min_quality": self.min_quality,
            "candidates": [r.to_dict() for r in self.rows],
            "reference_row": self.reference_row.to_dict(),
            "recommendation": self.recommendation.to_dict(),
            "disagreements": {ref: [d.__dict__ for d in items] for ref, items in self.disagreements.items()},
            "notes": self.notes,
            "work_dir": self.work_dir,
        }


async def calibrate(
    spec: CalibrateSpec,
    *,
    offloader: Offloader | None = None,
    config: Config | None = None,
    notify: Callable[[str], None] | None = None,
) -> Calibration:
    """Run the calibration described by ``spec``; see the module docstring."""
    from offload.config import load_config
    from offload.offloader import Offloader

    cfg = offloader.router.config if offloader is not None else (config or load_config())
    p = plan(spec, cfg)
    p.work_dir.mkdir(parents=True, exist_ok=True)
    say = notify or (lambda _m: None)
    off = offloader or Offloader(cfg)
    try:
        answers: dict[str, dict[str, dict[str, Any]]] = {}
        for ref in (*p.local, p.reference):
            say(f"calibrate: {ref} on {len(p.items)} sample(s)…")
            answers[ref] = await _answers(off, spec, p, ref)
        return await _score(off, spec, p, answers, say)
    finally:
        if offloader is None:
            await off.aclose()


def slug(ref: str) -> str:
    """A file name for a model ref."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in ref)


async def _answers(off: Offloader, spec: CalibrateSpec, p: Plan, ref: str) -> dict[str, dict[str, Any]]:
    from offload.batching import batch

    output = p.work_dir / f"{slug(ref)}.jsonl"
    run = batch(
        spec.task,
        spec.samples,
        output=output,
        offloader=off,
        id_field=spec.id_field,
        text_field=spec.text_field,
        concurrency=spec.concurrency,
        retry_failed=True,
        chain=(ref,),
        on_fail="warn",
        gate="checks",
        **p.options,
    )
    async with run:
        async for _ in run:
            pass
    rows: dict[str, dict[str, Any]] = {}
    with output.open(encoding="utf-8") as handle:
        for line in handle:
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                if isinstance(row, dict) and "id" in row:
                    rows[str(row["id"])] = row
    return rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and set(value) == {"label"}:
        return str(value["label"])
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _cost(off: Offloader, ref: str, row: Mapping[str, Any]) -> int:
    from offload.ledger.rows import nano_usd

    config = off.router.config
    resolved = config.resolve(ref)
    model = config.model_def(resolved)
    if config.is_local(resolved) or model is None or model.cost.free or row.get("error"):
        return 0
    tokens = row.get("tokens") or {}
    return nano_usd(model.cost, int(tokens.get("input", 0)), int(tokens.get("output", 0)))


async def _score(
    off: Offloader,
    spec: CalibrateSpec,
    p: Plan,
    answers: Mapping[str, Mapping[str, Mapping[str, Any]]],
    say: Callable[[str], None],
) -> Calibration:
    config = off.router.config
    ref_rows = answers[p.reference]
    yardstick = "expected" if p.expected is not None else "reference"
    yard = p.expected if p.expected is not None else {k: r.get("output") for k, r in ref_rows.items()}
    notes: list[str] = []
    if p.expected is None:
        notes.append(f"no {spec.expected_field!r} field on every sample: scored against {p.reference}")
    ref_cost = {item.key: _cost(off, p.reference, ref_rows.get(item.key, {})) for item in p.items}
    if not any(ref_cost.values()):
        notes.append(f"{p.reference} has no price in the config: $ figures for it are 0")

    rows: list[Row] = []
    scored_by: dict[str, list[Scored]] = {}
    disagreements: dict[str, list[Disagreement]] = {}
    models = [*p.local, p.reference]
    for ref in models:
        got = answers[ref]
        is_reference = ref == p.reference
        if is_reference and p.expected is None:
            scores = {item.key: 1.0 for item in p.items}
            measures: dict[str, float] = {}
        else:
            scores, measures = await _item_scores(off, spec, p, ref, got, yard, say)
        scored = [_scored(off, ref, item.key, got.get(item.key), scores[item.key]) for item in p.items]
        scored_by[ref] = scored
        row = summarize(
            ref, config.is_local(config.resolve(ref)), scored, ref_cost, spec.min_quality, measures
        )
        rows.append(row)
        disagreements[ref] = [
            Disagreement(
                item.key,
                (item.text or "")[:400],
                _text(s.output)[:400],
                _text(yard.get(item.key))[:400],
                s.score,
            )
            for item, s in zip(p.items, scored, strict=True)
            if s.score < 1.0
        ][:SHOWN_DISAGREEMENTS]
    recommendation = recommend(
        {ref: scored_by[ref] for ref in p.local}, p.reference, scored_by[p.reference], spec.min_quality
    )
    return Calibration(
        task=spec.task,
        reference=p.reference,
        judge=p.judge,
        yardstick=yardstick,
        min_quality=spec.min_quality,
        rows=rows[:-1],
        reference_row=rows[-1],
        recommendation=recommendation,
        disagreements=disagreements,
        notes=notes,
        work_dir=str(p.work_dir),
    )


def _scored(off: Offloader, ref: str, key: str, row: Mapping[str, Any] | None, score: float) -> Scored:
    if row is None or row.get("error"):
        return Scored(key, None, failed=True, passed=False, score=0.0)
    tokens = row.get("tokens") or {}
    return Scored(
        id=key,
        output=row.get("output"),
        failed=False,
        passed=not row.get("problems"),
        score=score,
        seconds=float(row.get("seconds") or 0.0),
        input_tokens=int(tokens.get("input", 0)),
        output_tokens=int(tokens.get("output", 0)),
        cost_nusd=_cost(off, ref, row),
    )


async def _item_scores(
    off: Offloader,
    spec: CalibrateSpec,
    p: Plan,
    ref: str,
    got: Mapping[str, Mapping[str, Any]],
    yard: Mapping[str, Any],
    say: Callable[[str], None],
) -> tuple[dict[str, float], dict[str, float]]:
    keys = [item.key for item in p.items]
    ok = {k: got[k]["output"] for k in keys if k in got and not got[k].get("error")}
    if spec.task in LABEL_TASKS:
        scores = {k: label_score(ok[k], yard[k]) if k in ok else 0.0 for k in keys}
        predicted = [ok.get(k, "") for k in keys]
        gold = [yard[k] for k in keys]
        return scores, {"accuracy": accuracy(predicted, gold), "macro_f1": macro_f1(predicted, gold)}
    if spec.task in FIELD_TASKS:
        counts = {k: field_counts(ok[k], yard[k]) for k in keys if k in ok}
        total = sum_counts(list(counts.values()))
        valid = mean([1.0 if k in ok and not got[k].get("problems") else 0.0 for k in keys])
        scores = {k: counts[k].f1 if k in counts else 0.0 for k in keys}
        measures = {"schema_valid": valid, "precision": total.precision, "recall": total.recall}
        return scores, {**measures, "f1": total.f1}
    pairs = await _judged(off, spec, p, ref, ok, yard, say)
    scores = {k: pairs[k].score if k in pairs else 0.0 for k in keys}
    first = sum(1 for pair in pairs.values() if pair.position == "first")
    second = sum(1 for pair in pairs.values() if pair.position == "second")
    lengths = [len(_text(ok[k])) / max(1, len(_text(yard[k]))) for k in ok]
    return scores, {
        "judge_first_bias": first / len(pairs) if pairs else 0.0,
        "judge_second_bias": second / len(pairs) if pairs else 0.0,
        "length_ratio": mean(lengths),
    }


async def _judged(
    off: Offloader,
    spec: CalibrateSpec,
    p: Plan,
    ref: str,
    ok: Mapping[str, Any],
    yard: Mapping[str, Any],
    say: Callable[[str], None],
) -> dict[str, judging.Pair]:
    assert p.judge is not None
    path = p.work_dir / f"judge-{slug(ref)}.jsonl"
    done = judging.read_verdicts(path)
    todo = [k for k in ok if k not in done]
    if todo:
        say(
            f"calibrate: judging {ref} against the {'expected answers' if p.expected else p.reference} "
            f"({len(todo)} item(s), both orders)…"
        )
    texts = {item.key: item.text or "" for item in p.items}
    rubric = RUBRICS.get(spec.task, "Is the answer correct, complete and faithful to the task?")
    gate = asyncio.Semaphore(JUDGE_PARALLEL)

    async def one(key: str) -> None:
        async with gate:
            pair = await judging.judge_pair(
                off.router,
                p.judge or p.reference,
                rubric=rubric,
                task=f"{spec.task}: {texts[key]}",
                candidate=_text(ok[key]),
                yardstick=_text(yard.get(key)),
                local_only=p.local_only,
            )
        judging.append_verdict(path, key, pair)
        done[key] = pair

    await asyncio.gather(*(one(k) for k in todo))
    return done
