"""Charge names (罪名): normalization as the CAIL scorer does, the known label list, and extraction from free text."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

__all__ = [
    "CHARGES_FILE",
    "KNOWN_CHARGES",
    "SELECTIVE_FORMS",
    "canonical_charge",
    "is_known_charge",
    "load_charges",
    "normalize_charge",
    "normalize_charges",
    "parse_charges",
]

CHARGES_FILE = Path(__file__).with_name("charges.txt")

_BRACKETS = re.compile(r"[\[\]【】〔〕]")
_WS = re.compile(r"\s+")
_EDGE = "、,.;:!?'\"“”‘’《》<>「」『』。·`*-_/|"


@lru_cache(maxsize=8192)
def normalize_charge(name: str) -> str:
    """Normalize like the CAIL scorer: "[组织、强迫…介绍]卖淫" → "组织、强迫…介绍卖淫罪"; empty → ""."""
    s = _WS.sub("", _BRACKETS.sub("", unicodedata.normalize("NFKC", name)))
    while True:  # "“盗窃罪”。" → 盗窃; "盗窃罪罪" → 盗窃
        stripped = s.strip(_EDGE).rstrip("罪")
        if stripped == s:
            break
        s = stripped
    return f"{s}罪" if s else ""


def normalize_charges(names: Iterable[str]) -> list[str]:
    """Normalized, de-duplicated, sorted charge names; names that normalize to "" are dropped."""
    return sorted({n for n in map(normalize_charge, names) if n})


def load_charges(path: str | Path = CHARGES_FILE) -> frozenset[str]:
    """Read a charge list (one name per line, # comments); a line that normalizes to nothing raises ValueError."""
    names: set[str] = set()
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = normalize_charge(line)
        if not name:
            raise ValueError(f"{path}:{lineno}: {line!r} is not a charge name")
        names.add(name)
    return frozenset(names)


KNOWN_CHARGES: frozenset[str] = load_charges()
"""Normalized charge labels (CAIL2018 set plus current names), each ending in 罪."""

# Labels not searched for in free text: CAIL's truncated 经济犯 label reads as the common phrase 经济犯罪.
_NOT_SEARCHED = frozenset({"经济犯罪"})


def _selective_forms(label: str) -> list[str]:
    """Partial forms of a selective charge (选择性罪名) whose verbs share one object.

    "走私、贩卖、运输、制造毒品罪" → 贩卖毒品罪, 走私、运输毒品罪, …; courts name only the acts committed.
    Only the plain "V1、V2、…、Vn+object" shape (two-character verbs) is expanded.
    """
    parts = label[:-1].split("、")
    if len(parts) < 2 or any(len(p) != 2 for p in parts[:-1]) or len(parts[-1]) < 3:
        return []
    verbs, obj = [*parts[:-1], parts[-1][:2]], parts[-1][2:]
    if "非法" in verbs:  # "窃取、收买、非法提供…": the last act is not a two-character verb
        return []
    forms = []
    for mask in range(1, 2 ** len(verbs) - 1):
        chosen = [v for i, v in enumerate(verbs) if mask >> i & 1]
        forms.append("、".join(chosen) + obj + "罪")
    return forms


SELECTIVE_FORMS: dict[str, str] = {
    form: label for label in sorted(KNOWN_CHARGES) for form in _selective_forms(label) if form not in KNOWN_CHARGES
}
"""Partial names of selective charges → the full label: "贩卖毒品罪" → "走私、贩卖、运输、制造毒品罪"."""


def is_known_charge(name: str) -> bool:
    """True when the normalized name is in KNOWN_CHARGES or is a partial form of one (贩卖毒品罪)."""
    normalized = normalize_charge(name)
    return normalized in KNOWN_CHARGES or normalized in SELECTIVE_FORMS


def canonical_charge(name: str) -> str:
    """Normalized name; a partial selective form maps to its full label (贩卖毒品 → 走私、贩卖、运输、制造毒品罪)."""
    normalized = normalize_charge(name)
    return SELECTIVE_FORMS.get(normalized, normalized)


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of words, preferring the longest at a position (fast: branches share prefixes)."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        """Pattern for the sub-trie below node."""
        ends_here = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends_here:
            return body + "?" if len(branches) == 1 and len(branches[0]) == 1 else "(?:" + body + ")?"
        return body

    return build(trie)


_BASES = frozenset(c[:-1] for c in (KNOWN_CHARGES | SELECTIVE_FORMS.keys()) - _NOT_SEARCHED)
_LABEL = _trie_pattern(_BASES)
# At each position: a known label followed by 罪 (shorter labels tried if needed), else the longest bare label.
# The leading look-ahead on first characters lets the regex engine skip positions quickly (8x faster).
_FIRST = re.escape("".join(sorted({b[0] for b in _BASES})))
_KNOWN = re.compile(rf"(?=[{_FIRST}])(?:(?P<z>{_LABEL})罪|(?P<b>{_LABEL}))")
_LIST_SEP_ONLY = re.compile(r"(?:[、,;/和及与或]|以及)+")
# A charge list starts after 犯 / 构成 / 罪名: "被告人张某犯盗窃罪、诈骗罪", "已构成盗窃罪", "罪名：盗窃罪；诈骗罪".
# 侵犯/冒犯/主犯/累犯… are not "commits"; 犯罪 is not followed by a charge.
_TRIGGER = re.compile(
    r"(?:(?<![侵冒违触进主从惯累嫌罪逃毒正唆胁])犯(?!罪)|构成(?!要件)|(?P<label>罪名))(?:有|了|为|是|:)?"
)
# One item of such a list: known label (with or without 罪) or an unknown "XX罪" (no 犯 inside, 2-30 characters).
_ITEM = re.compile(rf"(?P<z>{_LABEL})罪|(?P<b>{_LABEL})|(?P<u>[^罪犯、,.;:!?\s()。“”‘’《》\"']{{2,30}}?)罪")
_SEP = re.compile(r"(?:、|和|及|与|以及|并|,)")
_LABEL_SEP = re.compile(r"(?:、|和|及|与|以及|并|[,;/])")
# Words that can stand before 罪 after 犯 without being a charge ("犯上述罪", "犯新罪").
_UNKNOWN_STOP = re.compile(
    r"^(?:[数两一二三四五六七八九十几多前新本此该何其各同异重轻]|上述|前述|以上|其他|同种|异种|同一)"
)


# One str.translate pass: full-width → half-width, brackets and whitespace dropped.
_CLEAN_TABLE = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {
    ord(c): None for c in "[]【】〔〕［］ \t\n\r\f\v\u3000\xa0"
}


def _clean(text: str) -> str:
    """Full-width → half-width, brackets and whitespace removed, so labels written like the CAIL data still match."""
    return text.translate(_CLEAN_TABLE)


def _known_in_text(norm: str) -> tuple[list[str], list[str]]:
    """Known labels in text: (explicit — with 罪 or listed before one —, all bare matches)."""
    matches = [
        (m.start(), m.end(), m.group("z") or m.group("b"), m.group("z") is not None) for m in _KNOWN.finditer(norm)
    ]
    explicit: list[str] = []
    next_start: int | None = None
    for start, end, base, with_zui in reversed(matches):
        if with_zui or (next_start is not None and _LIST_SEP_ONLY.fullmatch(norm[end:next_start])):
            explicit.append(base)
            next_start = start
        else:
            next_start = None
    return explicit, [base for _, _, base, _ in matches]


def _listed_after_triggers(norm: str) -> list[str]:
    """Charge names in the lists that follow 犯 / 构成 / 罪名, known or not."""
    found: list[str] = []
    for trig in _TRIGGER.finditer(norm):
        sep_re = _LABEL_SEP if trig.group("label") else _SEP
        pos = trig.end()
        while True:
            item = _ITEM.match(norm, pos)
            if not item:
                break
            if item.group("u") is not None:
                unknown = item.group("u")
                inner = [m.group("z") or m.group("b") for m in _KNOWN.finditer(unknown)]
                if inner:  # "多次盗窃罪" → 盗窃罪: a known label inside wins over the unknown phrase
                    found.extend(inner)
                elif not _UNKNOWN_STOP.match(unknown):
                    found.append(unknown)
            else:
                found.append(item.group("z") or item.group("b"))
            sep = sep_re.match(norm, item.end())
            if not sep:
                break
            pos = sep.end()
    return found


@lru_cache(maxsize=16384)
def _parse_charges(text: str) -> tuple[str, ...]:
    """Cached worker of parse_charges."""
    norm = _clean(text)
    explicit, bare = _known_in_text(norm)
    names = explicit + _listed_after_triggers(norm)
    if not names:  # no "…罪" anywhere: an answer such as "盗窃" or "盗窃、诈骗"
        names = bare
    return tuple(normalize_charges(names))


def parse_charges(text: str) -> list[str]:
    """Charges named in free text ("盗窃罪、诈骗罪", "被告人张某犯盗窃罪", "盗窃"), normalized and sorted."""
    return list(_parse_charges(text or ""))
