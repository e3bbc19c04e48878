"""Cheap checks on answers: the gate (empty, non-answer, refusal, echo), length, language, near-duplicates.

They cost microseconds and catch the typical failures of small local models; each returns a
short problem description or ``None``. ``gate`` runs the ones every task needs, in order, and is
measured on a labelled corpus of good and bad answers in every language below
(``tests/data/gate_corpus.jsonl``). Language identification is deliberately simple: the
script for non-Latin languages, common-word frequencies for the major Latin-script ones —
enough to notice "asked for German, got English".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence

from offload.tasks import refusals

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


def refusal(text: str, source: str = "") -> str | None:
    """Problem when the answer is a refusal (in any language ``detect_language`` knows).

    A refusal-shaped answer passes when it may be faithful to the input: the input itself holds a
    refusal sentence, or it says "sorry"/"I can't…" and the answer is in another language (a
    translation).
    """
    if len(text) > 800:
        return None
    head = _head(text)
    if not (refusals.REFUSAL.match(head) or refusals.AS_AN_AI.match(head)):
        return None
    return None if source and _excused(text, source) else "the model refused"


def _excused(answer: str, source: str) -> bool:
    """True when a refusal-shaped ``answer`` may just render what ``source`` says."""
    if not refusals.INABILITY.search(_plain(source)):
        return False
    if any(refusals.REFUSAL.match(_head(s)) for s in re.split(r"(?<=[.!?。!?\n])", source) if s.strip()):
        return True
    said, wrote = _rough_language(answer), _rough_language(source)
    return said is not None and wrote is not None and said != wrote


def _rough_language(text: str) -> str | None:
    """``detect_language``, or for short texts the one language with the most common words."""
    found = detect_language(text)
    if found is not None:
        return found
    words = [w.lower() for w in WORD.findall(text)]
    scores = [(sum(w in stop for w in words), lang) for lang, stop in STOPWORDS.items()]
    best, lang = max(scores)
    return lang if best >= 1 and [s for s, _ in scores].count(best) == 1 else None


THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
OPEN_THINK = re.compile(r"^\s*<(?:think|thinking|reasoning)>", re.IGNORECASE)
CLOSE_THINK = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)
FENCE = re.compile(r"^\s*```[\w+-]*\s*$", re.MULTILINE)
MARKUP = re.compile(r"^(?:\s*(?:>|#+|[-*•]\s)\s*|\*\*|__|[*_`\"'\s])+")
LABEL = re.compile(
    r"^(?:final answer|answer|summary|response|reply|result|output|translation|rewrite|rewritten text"
    r"|zusammenfassung|antwort|übersetzung|résumé|réponse|traduction|resumen|respuesta|traducción"
    r"|riassunto|risposta|traduzione|resumo|resposta|tradução|samenvatting|antwoord|vertaling"
    r"|резюме|ответ|перевод|краткое содержание|περίληψη|απάντηση|μετάφραση|ملخص|الإجابة|الترجمة"
    r"|סיכום|תשובה|תרגום|सारांश|उत्तर|अनुवाद|สรุป|คำตอบ|คำแปล|요약|답변|번역|要約|回答|翻訳|摘要|总结|翻译)"
    r"\s*:\s*",
    re.IGNORECASE,
)
PLACEHOLDERS = frozenset(
    "n/a|n.a|na|null|nil|undefined|nan|none provided|tbd|todo|no answer|no response|no output|empty"
    "|(empty)|placeholder|lorem ipsum|i don't know|i do not know|no idea|[object object]|okay"
    "|understood|got it|no comment".split("|")
)
PLACEHOLDER = re.compile(
    r"^[\[<{(][^\]>})]{0,60}\b(?:here|summary|translation|answer|text|output|response|insert|available)\b"
    r"[^\]>})]{0,30}[\]>})]$"
)
QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"'})
# A model asking for the input instead of working on it ("Please provide the text…").
ASKS_FOR_INPUT = re.compile(
    r"^(?:(?:please|kindly|could you|can you|would you)\s+(?:please\s+)?(?:provide|share|paste|send|give)"
    r"\s+(?:me\s+)?(?:with\s+)?(?:the|your)\s+(?:full\s+|complete\s+|entire\s+|actual\s+)?"
    r"(?:text|content|document|input|passage|article)\b"
    r"|i\s+need\s+(?:the|more|the full)\s+(?:text|content|context|input|information)"
    r"|(?:the|your)\s+(?:text|message|input|content|document)\s+(?:you\s+provided\s+)?"
    r"(?:seems|appears|is)\s+(?:to\s+be\s+)?(?:incomplete|missing|empty|cut off|truncated))"
)
TAG = re.compile(r"</?[a-z_][\w-]*\s*/?>")
# offload's own re-ask wording (``TaskSpec.reask``); a model that repeats it has not answered.
REASK = (
    "your answer was not acceptable",
    "answer again fixing these problems",
    "reply again with only the json",
)


def visible(text: str) -> str:
    """The answer without ``<think>…</think>`` reasoning (all of it when the block never closes)."""
    shown = THINK.sub("", text)
    if CLOSE_THINK.search(shown):
        shown = CLOSE_THINK.split(shown)[-1]
    return "" if OPEN_THINK.match(shown) else shown.strip()


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().translate(QUOTES)


def _head(text: str) -> str:
    """The start of the visible answer, lower-cased, without markdown, quotes and a "Summary:" label."""
    head = _plain(visible(text))[:600]
    while True:
        stripped = LABEL.sub("", MARKUP.sub("", head), count=1)
        if stripped == head:
            return head.replace("**", "").replace("__", "")
        head = stripped


def non_answer(text: str) -> str | None:
    """Problem when the answer says nothing: only punctuation, an empty code block, "N/A", a
    placeholder, or a preamble ("Here is the summary:") with nothing after it."""
    shown = visible(text)
    if not shown:
        return "the answer holds only the model's reasoning, no answer"
    if "```" in shown and not FENCE.sub("", shown).strip(" \n`"):
        return "the answer is an empty code block"
    head = _head(shown).strip()
    if ASKS_FOR_INPUT.match(head):
        return "the answer asks for the input instead of doing the task"
    core = re.sub(r"\s*/\s*", "/", TAG.sub("", head).rstrip(".!?。:;,…- ").strip("\"' *_`"))
    if not any(c.isalnum() for c in core):
        return "the answer has no content"
    if core in PLACEHOLDERS or PLACEHOLDER.match(core):
        return f"the answer is a placeholder ({core!r}), not an answer"
    if "\n" not in head and len(head) <= 80 and head.endswith(":"):
        return "the answer is only a preamble, the content is missing"
    return None


def reask_echo(text: str) -> str | None:
    """Problem when the answer repeats offload's own re-ask instead of answering it."""
    a = _normal(text)
    if any(phrase in a for phrase in REASK):
        return "the answer repeats offload's re-ask instead of answering"
    return None


def instruction_echo(text: str, instructions: Sequence[str], source: str = "") -> str | None:
    """Problem when the answer is (almost) nothing but sentences of the task's instructions."""
    a = f" {_normal(text)} "
    src: str | None = None  # the source is long: normalized only when a sentence matches
    found = 0
    for instruction in instructions:
        for sentence in re.split(r"[.!?\n]+", instruction):
            s = f" {_normal(sentence)} "
            if len(s.split()) < 3 or s not in a:
                continue
            src = f" {_normal(source)} " if src is None else src
            if s not in src:
                a = a.replace(s, " ")
                found += 1
    if found and len(a.split()) < 3:
        return "the answer repeats the task's instructions instead of doing the task"
    return None


def gate(text: str, *, source: str = "", instructions: Sequence[str] = ()) -> list[str]:
    """The problems every answer is checked for, whatever the task: empty, no content, a
    refusal, or an echo of the instructions or of offload's re-ask. Empty when it passes."""
    if p := empty(text):
        return [p]
    if p := non_answer(text):
        return [p]
    shown = visible(text)
    inner = _first_json_string(shown)
    said = refusal(shown, source) or (refusal(inner, source) if inner else None)
    found = (reask_echo(shown), said, instruction_echo(shown, instructions, source))
    return [p for p in found if p]


def _first_json_string(text: str) -> str | None:
    """The first string value of a JSON answer (a refusal often hides in ``{"summary": …}``)."""
    body = FENCE.sub("", text).strip()
    if not body.startswith(("{", "[")):
        return None
    try:
        node = json.loads(body)
    except ValueError:
        return None
    while isinstance(node, dict | list) and node:
        node = next(iter(node.values())) if isinstance(node, dict) else node[0]
    return node if isinstance(node, str) else None


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
