"""Cheap checks on free-text answers: empty, refusal, length, language, prompt echo, near-duplicates.

They cost microseconds and catch the typical failures of small local models; each returns a
short problem description or ``None``. Language identification is deliberately simple: the
script for non-Latin languages, common-word frequencies for the major Latin-script ones —
enough to notice "asked for German, got English".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

REFUSAL = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry, (but )?i|i can(no|')t|i cannot|i'?m (not able|unable)"
    r"|i am (not able|unable)|as an ai\b|i won'?t be able)",
    re.IGNORECASE,
)
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "ru": ((0x0400, 0x04FF),),
    "el": ((0x0370, 0x03FF),),
    "ar": ((0x0600, 0x06FF),),
    "he": ((0x0590, 0x05FF),),
    "hi": ((0x0900, 0x097F),),
    "th": ((0x0E00, 0x0E7F),),
    "ko": ((0xAC00, 0xD7AF), (0x1100, 0x11FF)),
    "ja": ((0x3040, 0x30FF),),
    "zh": ((0x4E00, 0x9FFF),),
}
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and of to in is that it for on with as are this be was by not or have from".split()),
    "de": frozenset(
        "der die und das ist nicht ein eine zu den mit von sich des auf für im dem auch es".split()
    ),
    "fr": frozenset("le la les et des est un une du que pas pour dans ce il qui sur au avec sont".split()),
    "es": frozenset("el la los las de que y en es un una por con para del se no al lo como".split()),
    "it": frozenset("il la di che e è un una per non sono del della con si gli le da al".split()),
    "pt": frozenset("o a os as de que e em um uma para com não do da no na se por são".split()),
    "nl": frozenset("de het een en van is dat niet op te in zijn met voor er ook aan".split()),
}
LANGUAGES: dict[str, str] = {
    "english": "en", "german": "de", "deutsch": "de", "french": "fr", "français": "fr", "spanish": "es",
    "español": "es", "italian": "it", "portuguese": "pt", "dutch": "nl", "russian": "ru", "greek": "el",
    "arabic": "ar", "hebrew": "he", "hindi": "hi", "thai": "th", "korean": "ko", "japanese": "ja",
    "chinese": "zh", "mandarin": "zh",
}  # fmt: skip


def language_code(name: str) -> str | None:
    """``"German"`` / ``"de"`` → ``"de"``; ``None`` for languages this module cannot check."""
    key = name.strip().lower()
    if key in LANGUAGES:
        return LANGUAGES[key]
    return key if key in STOPWORDS or key in SCRIPTS else None


def detect_language(text: str) -> str | None:
    """Best-guess language code of ``text`` (``None`` when unsure)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    counts = {
        lang: sum(1 for c in letters if any(lo <= ord(c) <= hi for lo, hi in spans))
        for lang, spans in SCRIPTS.items()
    }
    if counts["ja"] and counts["ja"] + counts["zh"] > 0.3 * len(letters):
        return "ja"
    script, hits = max(counts.items(), key=lambda kv: kv[1])
    if hits > 0.3 * len(letters):
        return script
    words = [w.lower() for w in WORD.findall(text)]
    if len(words) < 3:
        return None
    scores = {lang: sum(1 for w in words if w in stop) for lang, stop in STOPWORDS.items()}
    best, score = max(scores.items(), key=lambda kv: kv[1])
    runner_up = sorted(scores.values())[-2]
    return best if score >= 2 and score > runner_up else None


def empty(text: str) -> str | None:
    """Problem when the answer is blank."""
    return "the answer is empty" if not text.strip() else None


def refusal(text: str) -> str | None:
    """Problem when the answer is a refusal."""
    return "the model refused" if REFUSAL.match(text) else None


def words(text: str) -> int:
    """Word count."""
    return len(text.split())


def too_long(text: str, limit_words: int) -> str | None:
    """Problem when ``text`` exceeds ``limit_words`` words."""
    n = words(text)
    return f"the answer has {n} words, over the limit of {limit_words}" if n > limit_words else None


def wrong_language(text: str, target: str) -> str | None:
    """Problem when ``text`` is recognisably not in ``target`` (a name or code)."""
    code = language_code(target)
    if code is None:
        return None
    found = detect_language(text)
    if found is None or found == code:
        return None
    return f"the answer looks like {found!r}, not {code!r}"


def _normal(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def echo(answer: str, *sources: str) -> str | None:
    """Problem when the answer merely repeats the prompt or the instructions."""
    a = _normal(answer)
    if not a:
        return None
    for source in sources:
        s = _normal(source)
        if s and (a == s or (len(s) > 40 and s in a)):
            return "the answer repeats the prompt instead of doing the task"
    return None


def similar(a: str, b: str, threshold: float = 0.7) -> bool:
    """True when two short texts say nearly the same: most words shared (Jaccard), or one's
    words all contained in the other's ("plant trees" / "plant more trees")."""
    wa, wb = set(_normal(a).split()), set(_normal(b).split())
    if not wa or not wb:
        return wa == wb
    shared = len(wa & wb)
    contained = min(len(wa), len(wb)) >= 2 and shared == min(len(wa), len(wb))
    return contained or shared / len(wa | wb) >= threshold


def distinct(items: Sequence[str], threshold: float = 0.7) -> list[str]:
    """``items`` without blanks and near-duplicates, first occurrence kept."""
    kept: list[str] = []
    for item in (i.strip() for i in items):
        if item and not any(similar(item, k, threshold) for k in kept):
            kept.append(item)
    return kept
