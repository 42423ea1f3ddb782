"""Charge names (罪名): normalization as the CAIL scorer does, the known label list, and extraction from free text.

How a name is read (the policy is in README "How answers are read"):
- A name is the text before a 罪 that ends it (犯罪所得 / 犯罪活动 inside a label do not end it), cut after the
  last word that introduces a charge (犯, 构成, 涉嫌, 罪名, 认定为, …). It is matched whole: the label itself, a
  synonym from CHARGE_SYNONYMS, or a partial form of a label (some of its enumerated acts or objects left out:
  非法持有枪支罪 → 非法持有、私藏枪支、弹药罪); never a shorter label found inside it (走私普通货物罪 is not 走私罪).
- When several labels cover a partial form, the most specific wins (fewest enumerated parts, then the shortest):
  容留卖淫罪 → 引诱、容留、介绍卖淫罪, not 组织、强迫、引诱、容留、介绍卖淫罪.
- A …罪 name that is none of these is returned as written (an unknown label: it counts as wrong); junk such as
  什么罪 or 数罪 is dropped; a negated name (不构成盗窃罪) is no claim.
- Without any 罪 in the text, only whole known names count ("盗窃、诈骗").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

__all__ = [
    "CHARGES_FILE",
    "CHARGE_SYNONYMS",
    "align_charges",
    "KNOWN_CHARGES",
    "MAX_TEXT_CHARS",
    "canonical_charge",
    "is_known_charge",
    "load_charges",
    "normalize_charge",
    "normalize_charges",
    "parse_charges",
]

CHARGES_FILE = Path(__file__).with_name("charges.txt")
MAX_TEXT_CHARS = 10_000
"""Readers look at the first this many characters only (a verdict is far shorter): bounded time on any input."""

_BRACKETS = re.compile(r"[\[\]【】〔〕]")
_WS = re.compile(r"\s+")
_EDGE = "、,.;:!?'\"“”‘’《》<>「」『』。·`*-_/|"


@lru_cache(maxsize=8192)
def normalize_charge(name: str) -> str:
    """Normalize like the CAIL scorer: "[组织、强迫…介绍]卖淫" → "组织、强迫…介绍卖淫罪"; empty → ""."""
    if not isinstance(name, str):
        return ""
    s = _WS.sub("", _BRACKETS.sub("", unicodedata.normalize("NFKC", name[:MAX_TEXT_CHARS])))
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

CHARGE_SYNONYMS: dict[str, str] = {
    # Common names that are not the statutory label, as models and people write them → the label.
    "纵火罪": "放火罪",
    "醉酒驾驶罪": "危险驾驶罪",
    "醉酒驾驶机动车罪": "危险驾驶罪",
    "醉酒驾车罪": "危险驾驶罪",
    "醉驾罪": "危险驾驶罪",
    "酒驾罪": "危险驾驶罪",
    "酒后驾驶罪": "危险驾驶罪",
    "危险驾驶机动车罪": "危险驾驶罪",
    "偷税罪": "逃税罪",  # the pre-2009 name
    "偷税漏税罪": "逃税罪",
    "漏税罪": "逃税罪",
    "聚众赌博罪": "赌博罪",  # 聚众赌博 is one of the two ways of committing 赌博罪 (art. 303)
    "偷窃罪": "盗窃罪",
    "杀人罪": "故意杀人罪",
    "伤害罪": "故意伤害罪",
    "故意伤人罪": "故意伤害罪",
    "强奸妇女罪": "强奸罪",
    "非法拘留罪": "非法拘禁罪",
    "敲诈罪": "敲诈勒索罪",
    "勒索罪": "敲诈勒索罪",
    "交通肇事逃逸罪": "交通肇事罪",
    "贩毒罪": "走私、贩卖、运输、制造毒品罪",
    "销赃罪": "掩饰、隐瞒犯罪所得、犯罪所得收益罪",
    "窝赃罪": "掩饰、隐瞒犯罪所得、犯罪所得收益罪",
}
"""Synonyms and older names → the label (a documented table; anything else unknown counts as a wrong label)."""

# Labels not read from free text: CAIL's truncated 经济犯 label reads as the common phrase 经济犯罪.
_NOT_SEARCHED = frozenset({"经济犯罪"})
_MIN_PARTIAL_CHARS = 4  # a partial form keeps at least this many characters: 贩卖毒品, 容留卖淫


def _shape(label: str) -> tuple[str, frozenset[int]]:
    """A label without 、 and 罪, and the cut points where its enumerated parts met (where a 、 stood)."""
    chars: list[str] = []
    cuts: set[int] = set()
    for ch in label[:-1]:
        if ch == "、":
            cuts.add(len(chars))
        else:
            chars.append(ch)
    return "".join(chars), frozenset(cuts)


_SHAPES: dict[str, tuple[str, frozenset[int]]] = {label: _shape(label) for label in sorted(KNOWN_CHARGES)}
_LONGEST_LABEL = max(len(flat) for flat, _ in _SHAPES.values())
_BY_CHAR: dict[str, set[str]] = {}
for _label, (_flat, _) in _SHAPES.items():
    for _ch in _flat:
        _BY_CHAR.setdefault(_ch, set()).add(_label)


def _covers(name: str, flat: str, cuts: frozenset[int]) -> bool:
    """Whether name is flat with whole enumerated parts left out.

    A left-out run flat[j:k] must start or end where parts meet (a cut): 非法持有枪支 comes from
    非法持有|私藏枪支|弹药 by leaving out "私藏" and "弹药", each starting at a cut.
    """
    n, m = len(name), len(flat)
    # reach[i][j]: name[i:] can be matched against flat[j:]; filled backwards (O(n·m²), names are short).
    reach = [[False] * (m + 1) for _ in range(n + 1)]
    reach[n][m] = True
    for i in range(n, -1, -1):
        for j in range(m - 1, -1, -1):
            if i < n and name[i] == flat[j] and reach[i + 1][j + 1]:
                reach[i][j] = True
                continue
            reach[i][j] = any(reach[i][k] for k in range(j + 1, m + 1) if j in cuts or k in cuts)
    return reach[0][0]


@lru_cache(maxsize=65536)
def _partial_label(name: str) -> str | None:
    """The most specific label of which name (no 罪) is a partial form, or None."""
    flat = name.replace("、", "")
    if not _MIN_PARTIAL_CHARS <= len(flat) <= _LONGEST_LABEL:
        return None
    pools = sorted((_BY_CHAR.get(ch, set()) for ch in set(flat)), key=len)
    candidates = set(pools[0]).intersection(*pools[1:]) if pools else set()
    fits = [label for label in candidates if len(_SHAPES[label][0]) >= len(flat) and _covers(flat, *_SHAPES[label])]
    if not fits:
        return None
    return min(fits, key=lambda label: (len(_SHAPES[label][1]), len(_SHAPES[label][0]), label))


@lru_cache(maxsize=65536)
def _resolve(base: str) -> str | None:
    """The label a written name (without 罪) stands for: the label itself, a synonym, or a partial form; else None."""
    name = normalize_charge(base)
    if not name:
        return None
    if name in KNOWN_CHARGES:
        return name
    if name in CHARGE_SYNONYMS:
        return CHARGE_SYNONYMS[name]
    return _partial_label(name[:-1])


def is_known_charge(name: str) -> bool:
    """True when the name is a label, a listed synonym or a partial form of a label (贩卖毒品罪, 非法持有枪支罪)."""
    return _resolve(name) is not None


def canonical_charge(name: str) -> str:
    """The label a name stands for (贩卖毒品 → 走私、贩卖、运输、制造毒品罪, 纵火 → 放火罪); unknown → the name."""
    return _resolve(name) or normalize_charge(name)


def _fits(name: str, label: str) -> bool:
    """Whether a written name stands for label: the same label, or a partial form of it (容留卖淫罪 of the umbrella)."""
    if canonical_charge(name) == label:
        return True
    flat = normalize_charge(name)[:-1].replace("、", "")
    if label not in _SHAPES or not _MIN_PARTIAL_CHARS <= len(flat) <= len(_SHAPES[label][0]):
        return False
    return _covers(flat, *_SHAPES[label])


def align_charges(names: Iterable[str], gold_labels: Iterable[str] = ()) -> list[str]:
    """Labels of written names, sorted and unique; a name that fits a gold label (the label or a partial form of it)
    counts as that label: 容留卖淫罪 matches a gold 组织、强迫、引诱、容留、介绍卖淫罪. Otherwise canonical_charge."""
    gold = sorted(set(gold_labels))
    labels = set()
    for name in names:
        if not normalize_charge(name):
            continue
        labels.add(next((g for g in gold if _fits(name, g)), None) or canonical_charge(name))
    return sorted(labels)


# ------------------------------------------------------------------------------------------------ free text

# One str.translate pass: full-width → half-width, brackets and whitespace dropped, line breaks end a phrase.
_CLEAN_TABLE = (
    {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
    | {ord(c): None for c in "[]【】〔〕［］ \t\f\v\u3000\xa0"}
    | {ord("\n"): "。", ord("\r"): "。"}
)
# Characters that end a phrase (parentheses do not: 偷越国(边)境罪 is one label).
_DELIMS = "。,.;:!?'\"“”‘’《》<>「」『』|…"
_PHRASE = re.compile(f"[^{re.escape(_DELIMS)}]+")
# 罪名 / 罪行 / 罪责 …: the 罪 ends what stands before it and the word after it is no name ("盗窃罪名成立").
_NOT_NAME = re.compile(r"罪(?=[名行责犯证状过刑数错])")
_LIST_SEP = re.compile(r"以及|[、和及与或/]")
# Words after which a charge name starts; the strong ones also bound an unknown name.
_STRONG = r"(?<![侵冒违触进主从惯累嫌罪逃毒正唆胁])犯(?!罪)|构成|涉嫌|认定为|认定|定性为|判定为|成立"
_TRIGGER = re.compile(rf"(?P<strong>{_STRONG})|以|为|是|系|属于|即|的")
_NEGATED = re.compile(
    r"(?:不|未|没有|并非|并不|并未|不能|不应)(?:构成|成立|属于|涉嫌|认定为|认定|是|犯)|而非|而不是|并非|排除"
)
# List markers that are no part of a name: (1) 盗窃罪, ⑵, ①.
_MARKER = re.compile(r"\([\d一二三四五六七八九十]{1,3}\)|[\u2460-\u249b\u3251-\u325f]")
_NOTE = re.compile(r"(?<=罪)\([^()]{1,40}\)")  # a note right after a name: 盗窃罪(数额较大)
_FILL = re.compile(r"^(?:了|为|是|有|的|已经|已|均|分别|多次|连续|共同|再次|又|还|亦|也|即|系|属|一个|一项)+")
_UNKNOWN_STOP = re.compile(
    r"^(?:[数两一二三四五六七八九十几多前新本此该何其各同异重轻不未没]|上述|前述|以上|其他|同种|异种|同一)"
)
_UNKNOWN_JUNK = ("什么", "哪", "何种", "怎", "犯罪", "嫌疑", "刑", "判处", "处罚", "应当")
# An unknown name ending so is a phrase: 数罪, 一罪, 本罪, 无罪, 认罪, 定罪, 有罪, 重罪, 新罪, 累犯罪…
_UNKNOWN_JUNK_END = "数一本此该其无认定有重轻新同何犯"
_MAX_PHRASE = 200  # characters of a phrase read back from its 罪 (a list of several names fits)
_MAX_PIECES = 64
_MAX_NAMES = 1000  # name phrases read per text (all 432 labels listed still fit)
_MAX_TRIGGERS = 8
_MAX_UNKNOWN = 20
_MAX_LABEL_PIECES = max(len(_LIST_SEP.split(label)) for label in KNOWN_CHARGES)


def _clean(text: str) -> str:
    """Full-width → half-width, brackets and whitespace removed, so labels written like the CAIL data still match."""
    return _NOTE.sub("。", _MARKER.sub("。", _NOT_NAME.sub("罪。", text.translate(_CLEAN_TABLE))))


def _is_junk(base: str) -> bool:
    """Whether an unknown name (without 罪) is a phrase rather than a charge: 什么, 数, 上述, 应当数…"""
    return (
        not 2 <= len(base) <= _MAX_UNKNOWN
        or bool(_UNKNOWN_STOP.match(base))
        or any(word in base for word in _UNKNOWN_JUNK)
        or base[-1] in _UNKNOWN_JUNK_END
    )


def _is_exact(written: str) -> bool:
    """Whether a written name is a label or a listed synonym itself (not only a partial form of one)."""
    name = normalize_charge(written)
    return name in KNOWN_CHARGES or name in CHARGE_SYNONYMS


def _read_list(text: str, allow_unknown: bool) -> list[str] | None:
    """Names in a list such as "盗窃、诈骗": whole known names, longest first; None when a piece is unknown and
    allow_unknown is False, else the unknown piece is kept as written (or dropped when it is junk)."""
    bounds: list[tuple[int, int]] = []
    pos = 0
    for sep in _LIST_SEP.finditer(text):
        bounds.append((pos, sep.start()))
        pos = sep.end()
        if len(bounds) >= _MAX_PIECES:
            break
    else:
        bounds.append((pos, len(text)))
    bounds = [(a, b) for a, b in bounds if b > a]
    found: list[str] = []
    i = 0
    while i < len(bounds):
        for j in range(min(len(bounds), i + _MAX_LABEL_PIECES), i, -1):
            written = text[bounds[i][0] : bounds[j - 1][1]]
            label = _resolve(written)
            if label is None:
                continue
            exact_parts = j - i > 1 and all(_is_exact(text[a:b]) for a, b in bounds[i:j])
            if exact_parts and normalize_charge(written) not in KNOWN_CHARGES:
                continue  # 盗窃、抢夺 is two labels, not a partial 盗窃、抢夺枪支、弹药、爆炸物罪
            if label in _NOT_SEARCHED:
                continue
            found.append(normalize_charge(written))
            i = j
            break
        else:
            if not allow_unknown:
                return None
            piece = _FILL.sub("", text[bounds[i][0] : bounds[i][1]])
            if not _is_junk(piece):
                found.append(normalize_charge(piece))
            i += 1
    return found


@lru_cache(maxsize=16384)
def _read_phrase(phrase: str, allow_unknown: bool) -> tuple[str, ...]:
    """Charge names in the text before one 罪 (or, without 罪, in one phrase); see the module docstring."""
    phrase = phrase[-_MAX_PHRASE:].lstrip("、和及与或/")
    if not phrase or _NEGATED.search(phrase):
        return ()
    triggers = list(_TRIGGER.finditer(phrase))[-_MAX_TRIGGERS:]
    starts = [0] + [m.end() for m in triggers]
    for start in starts:
        for text in dict.fromkeys((phrase[start:], _FILL.sub("", phrase[start:]))):
            if text:
                names = _read_list(text, allow_unknown=False)
                if names:
                    return tuple(names)
    if not allow_unknown:
        return ()
    strong = [m.end() for m in triggers if m.group("strong")]
    start = strong[-1] if strong else (triggers[-1].end() if triggers else 0)
    return tuple(_read_list(_FILL.sub("", phrase[start:]), allow_unknown=True) or ())


def _name_phrases(phrase: str) -> tuple[list[str], str]:
    """Split one phrase at the 罪 that end names: (texts before each such 罪, the rest after the last)."""
    names: list[str] = []
    start = 0
    pos = phrase.find("罪")
    while pos >= 0:
        nxt = phrase[pos + 1 : pos + 2]
        inside_word = pos > 0 and phrase[pos - 1] == "犯" and nxt and nxt not in "罪、和及与或/()"
        if not inside_word:  # 犯罪所得 / 犯罪活动 / 犯罪分子 are part of a longer name
            names.append(phrase[start:pos])
            start = pos + 1
        pos = phrase.find("罪", pos + 1)
    return names, phrase[start:]


@lru_cache(maxsize=16384)
def _parse_charges(text: str) -> tuple[str, ...]:
    """Cached worker of parse_charges."""
    phrases = _PHRASE.findall(_clean(text[:MAX_TEXT_CHARS]))
    split = [_name_phrases(p) for p in phrases]
    names: list[str] = []
    if any(before for before, _ in split):
        phrases = [phrase for before, _ in split for phrase in before if phrase.strip("、和及与或/")]
        for phrase in phrases[:_MAX_NAMES]:
            names.extend(_read_phrase(phrase, allow_unknown=True))
    else:  # no "…罪" anywhere: an answer such as "盗窃" or "盗窃、诈骗" (whole known names only)
        for _, rest in split[:_MAX_NAMES]:
            names.extend(_read_phrase(rest, allow_unknown=False))
    return tuple(normalize_charges(names))


def parse_charges(text: str) -> list[str]:
    """Charges named in free text ("盗窃罪、诈骗罪", "被告人张某犯盗窃罪", "盗窃"), normalized and sorted, as written.

    Unknown …罪 names are kept (they count as wrong labels); canonical_charge maps each to its label.
    """
    return list(_parse_charges(text if isinstance(text, str) else ""))
