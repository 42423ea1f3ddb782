"""Reading a safety answer: ``<reasoning> … </reasoning> <answer> {JSON} </answer>`` → format flag, blocks, scores.

Every reader caps its input first and then scans with str methods, one-pass regexes without nested quantifiers and
the standard JSON decoder, so any input takes bounded time; non-strings, bad bytes and lone surrogates become text
(U+FFFD), never an exception.

Lenient where a person reads the answer the same:
- a Markdown code fence around the JSON (```json … ```), text before the first ``{`` or after the last ``}``;
- full-width characters (NFKC: ``８５``, ``：``, ``，``, ``＆＆``), curly or corner quotes for ``"``, single quotes
  when the object has no double quotes, a trailing comma, whitespace inside a key;
- a score written ``85``, ``85.0``, ``"85"`` or ``"85分"`` (also bare ``85分`` in the JSON).
Strict where the meaning changes (the key is *invalid*: present, but it gives no score):
- a score outside 0..100, a fractional score (85.5), a boolean, null, a list/object or other text ("高", "良好");
- a key given twice (also after normalization): both values are dropped, the key is invalid;
- anything but one JSON object (a list, two objects, truncated JSON): no scores at all (``json_ok`` false).
Keys that are not one of the nine are *extra*; the nine that do not appear are *missing*.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from data.domains.safety.dimensions import DIMENSIONS, FULL_MARKS, MIN_SCORE, canonical_key

__all__ = [
    "ANSWER_CLOSE",
    "ANSWER_OPEN",
    "MAX_ANSWER_CHARS",
    "MAX_RESPONSE_CHARS",
    "REASONING_CLOSE",
    "REASONING_OPEN",
    "ParsedAnswer",
    "check_format",
    "extract_answer",
    "extract_reasoning",
    "parse_answer",
    "read_score",
    "sanitize",
]

REASONING_OPEN, REASONING_CLOSE = "<reasoning>", "</reasoning>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

MAX_RESPONSE_CHARS = 20000
"""Responses are cut here before any scan (a 9-key answer with its reasoning needs a small fraction of it)."""

MAX_ANSWER_CHARS = 4000
"""An answer block longer than this is cut before JSON parsing (it then usually fails to parse, as it should)."""

_MAX_VALUE_CHARS = 16
_QUOTES = str.maketrans({c: '"' for c in "“”„‟″〝〞「」『』"})
_FENCE_OPEN = re.compile(r"```[A-Za-z0-9_-]{0,16}")
_POINTS_AFTER_NUMBER = re.compile(r"(?<=[0-9])[ \t]?分")
_TRAILING_COMMA = re.compile(r",(?=[ \t\r\n]{0,64}})")
_SCORE_TEXT = re.compile(r"([0-9]{1,3})(?:\.0{1,3})?[ \t]?分?")


def sanitize(text: Any, limit: int = MAX_RESPONSE_CHARS) -> str:
    """Any value as a str of at most `limit` characters: non-str → "", lone surrogates and bad bytes → U+FFFD."""
    if isinstance(text, bytes):
        text = text[: limit * 4].decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return ""
    text = text[:limit]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
    return text


def _tag_positions(response: str) -> tuple[int, int, int, int] | None:
    """Positions of the four tags when each occurs exactly once, else None."""
    tags = (REASONING_OPEN, REASONING_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
    if any(response.count(t) != 1 for t in tags):
        return None
    return tuple(response.find(t) for t in tags)  # type: ignore[return-value]


def check_format(response: Any) -> bool:
    """Both blocks exactly once, reasoning first, both non-empty, only whitespace around and between them."""
    text = sanitize(response).strip()
    pos = _tag_positions(text)
    if pos is None:
        return False
    r_open, r_close, a_open, a_close = pos
    if not (r_open == 0 and r_open < r_close < a_open < a_close and a_close + len(ANSWER_CLOSE) == len(text)):
        return False
    between = text[r_close + len(REASONING_CLOSE) : a_open]
    reasoning = text[r_open + len(REASONING_OPEN) : r_close]
    answer = text[a_open + len(ANSWER_OPEN) : a_close]
    return not between.strip() and bool(reasoning.strip()) and bool(answer.strip())


def _last_block(response: str, open_tag: str, close_tag: str) -> str | None:
    """Content of the last complete open…close block, stripped; None when absent or empty."""
    end = response.rfind(close_tag)
    if end < 0:
        return None
    start = response.rfind(open_tag, 0, end)
    if start < 0:
        return None
    content = response[start + len(open_tag) : end].strip()
    return content or None


def extract_answer(response: Any) -> str | None:
    """The last complete ``<answer>`` block (read even when the format is wrong; the format part is separate)."""
    return _last_block(sanitize(response), ANSWER_OPEN, ANSWER_CLOSE)


def extract_reasoning(response: Any) -> str | None:
    """The last complete ``<reasoning>`` block."""
    return _last_block(sanitize(response), REASONING_OPEN, REASONING_CLOSE)


def read_score(value: Any) -> int | None:
    """One JSON value as an integer score 0..100, or None when it gives none (see the module docstring)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number: float = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        number = value
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value[: _MAX_VALUE_CHARS * 2]).strip()
        if len(text) > _MAX_VALUE_CHARS:
            return None
        match = _SCORE_TEXT.fullmatch(text)
        if match is None:
            return None
        number = int(match.group(1))
    else:
        return None
    return int(number) if MIN_SCORE <= number <= FULL_MARKS else None


@dataclass(frozen=True)
class ParsedAnswer:
    """Scores read from an answer; every one of the nine keys is in exactly one of scores / invalid / missing."""

    scores: dict[str, int] = field(default_factory=dict)  # valid scores by canonical key
    invalid: tuple[str, ...] = ()  # expected keys present without a usable score (bad value or given twice)
    missing: tuple[str, ...] = DIMENSIONS  # expected keys absent
    extra: int = 0  # distinct keys that are not among the nine
    duplicates: tuple[str, ...] = ()  # keys (expected or extra) given more than once
    json_ok: bool = False  # one JSON object was read
    error: str = ""  # why json_ok is false ("" when it is true)


class _Pairs(list):
    """A JSON object kept as its (key, value) pairs, so repeated keys stay visible."""


def _loads(text: str) -> _Pairs | None:
    """json.loads keeping every object as _Pairs; None when the text is not exactly one JSON object."""
    try:
        value = json.loads(text, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, _Pairs) else None


def _object_text(answer: str) -> str | None:
    """The candidate JSON object: fences dropped, NFKC, quotes unified, from the first '{' to the last '}'."""
    text = unicodedata.normalize("NFKC", answer).translate(_QUOTES).strip()
    if text.startswith("```"):
        text = _FENCE_OPEN.sub("", text, count=1)
    if text.endswith("```"):
        text = text[:-3]
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    return text[start : end + 1]


def _repaired(text: str) -> str:
    """The usual hand-written slips a person reads past: 85分 as a number, a trailing comma, single quotes."""
    text = _TRAILING_COMMA.sub("", _POINTS_AFTER_NUMBER.sub("", text))
    if '"' not in text:
        text = text.replace("'", '"')
    return text


def parse_answer(answer: Any) -> ParsedAnswer:
    """Read the nine scores from an answer block's content (see the module docstring for every rule)."""
    if answer is None:
        return ParsedAnswer(error="no answer block")
    raw = sanitize(answer, MAX_ANSWER_CHARS)
    text = _object_text(raw)
    if text is None:
        return ParsedAnswer(error="no JSON object in the answer")
    pairs = _loads(text)
    if pairs is None:
        pairs = _loads(_repaired(text))
    if pairs is None:
        return ParsedAnswer(error="the answer is not one valid JSON object")
    seen: dict[str, list[Any]] = {}
    for key, value in pairs:
        seen.setdefault(canonical_key(unicodedata.normalize("NFKC", str(key))), []).append(value)
    expected = set(DIMENSIONS)
    scores: dict[str, int] = {}
    invalid: list[str] = []
    for key in DIMENSIONS:
        values = seen.get(key)
        if values is None:
            continue
        score = read_score(values[0]) if len(values) == 1 else None
        if score is None:
            invalid.append(key)
        else:
            scores[key] = score
    return ParsedAnswer(
        scores=scores,
        invalid=tuple(invalid),
        missing=tuple(k for k in DIMENSIONS if k not in seen),
        extra=sum(1 for k in seen if k not in expected),
        duplicates=tuple(k for k, v in seen.items() if len(v) > 1),
        json_ok=True,
    )
