"""Charge names (罪名): normalization as the CAIL scorer does, the known label list, and extraction from free text.

How a name is read (the policy is in README "How answers are read"):
- A name is the text before a 罪 that ends it (犯罪所得 / 犯罪活动 inside a label do not end it), cut after the
  last word that introduces a charge (犯, 构成, 涉嫌, 认定为, 符合, 触犯, …), an article cited in front of it
  (第二百六十四条【盗窃罪】) or an opening bracket. 罪名 / 罪行, a colon and an opening bracket introduce a name: a
  bare known name after them is that charge even in an answer with other …罪 (罪名：诈骗), and the 罪 of 罪名 is no
  part of a name.
- A name is matched whole: the label itself, a synonym from CHARGE_SYNONYMS, or a partial form of a label (some of
  its enumerated acts or objects left out, the name ending where one of the label's objects ends: 非法持有枪支罪 →
  非法持有、私藏枪支、弹药罪; a leading 非法 may be left out: 持有毒品罪 → 非法持有毒品罪); never a shorter label found
  inside it (走私普通货物罪 is not 走私罪), never a label whose object it lacks (持有毒品罪 is not the drug-seed label,
  非法买卖、运输、携带罪 is no label). An enumeration whose parts are no names on their own may also carry acts the
  label lacks, up to a quarter of its characters (a near form: 非法买卖、运输、携带、邮寄、储存、藏匿枪支、弹药罪 →
  非法制造、买卖、运输、邮寄、储存枪支、弹药、爆炸物罪), when no label has it as a partial form.
- When several labels fit, the most specific wins (fewest enumerated parts, then the shortest): 容留卖淫罪 →
  引诱、容留、介绍卖淫罪, not 组织、强迫、引诱、容留、介绍卖淫罪.
- A …罪 name that is none of these is returned as written (an unknown label: it counts as wrong); in a list sharing
  one 罪, a piece that is no name on its own belongs to the name after it (窝藏、毁灭证据罪 is one unknown name); junk
  such as 什么罪 or 数罪 is dropped; a negated name (不构成盗窃罪, 不符合盗窃罪) is no claim.
- Without any 罪 in the text, only whole known names count ("盗窃、诈骗").
- Against gold labels (align_charges) a written name stands for one label: a label in its own right (or a synonym)
  is that label only; a partial or near form is its own label when that is a gold label, else the most specific
  gold label it fits.
- A label renamed by an amendment, its old and its current name both in charges.txt, is one label (CHARGE_RENAMES):
  canonical_charge gives the current name for either, so gold and prediction meet whichever name each uses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path

__all__ = [
    "CHARGES_FILE",
    "CHARGE_RENAMES",
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

CHARGE_RENAMES: dict[str, str] = {
    # Old name → current name of one charge, both labels in charges.txt (CAIL2018 uses the old one, a model that
    # knows today's law writes the new one). 刑法修正案（十一） (2020):
    "生产、销售假药罪": "生产、销售、提供假药罪",
    "生产、销售劣药罪": "生产、销售、提供劣药罪",
    "食品监管渎职罪": "食品、药品监管渎职罪",
    "强令违章冒险作业罪": "强令、组织他人违章冒险作业罪",
    # 刑法修正案（三） (2001) added 危险物质 to art. 127:
    "盗窃、抢夺枪支、弹药、爆炸物罪": "盗窃、抢夺枪支、弹药、爆炸物、危险物质罪",
}
"""Renamed labels: both names are one label, the current one (canonical_charge maps the old name to it)."""

# Labels not read from free text: CAIL's truncated 经济犯 label reads as the common phrase 经济犯罪.
_NOT_SEARCHED = frozenset({"经济犯罪"})
_MIN_PARTIAL_CHARS = 4  # a partial form keeps at least this many characters: 贩卖毒品, 容留卖淫
_QUALIFIER = "非法"  # a qualifier, not an act: a leading 非法 may be left out (持有毒品罪 is 非法持有毒品罪)
_ACT_CHARS = 2  # enumerated acts are two-character words (买卖, 运输); a longer part holds an object (储存枪支)
_NEAR_SHARE = 4  # a near form leaves out at most 1/4 of its own characters (acts the label lacks)
_NO_FIT = 1 << 30


@dataclass(frozen=True)
class _Shape:
    """A label as partial forms are matched against it."""

    flat: str  # the label without 、 and 罪
    cuts: frozenset[int]  # where its enumerated parts meet (where a 、 stood), and after a leading 非法
    ends: frozenset[int]  # where a partial form may end: where an object part ends, or the label's end
    parts: int  # enumerated parts: the fewer, the more specific


def _shape(label: str) -> _Shape:
    """The shape of a label: 非法持有、私藏枪支、弹药罪 → 非法持有私藏枪支弹药, cuts {2, 4, 8}, ends {8, 10}."""
    pieces = label[:-1].split("、")
    bounds = list(accumulate(len(piece) for piece in pieces))
    cuts = set(bounds[:-1])
    if pieces[0].startswith(_QUALIFIER) and len(pieces[0]) > len(_QUALIFIER):
        cuts.add(len(_QUALIFIER))
    cores = [piece.removeprefix(_QUALIFIER) if k == 0 else piece for k, piece in enumerate(pieces)]
    first_object = next((k for k, core in enumerate(cores) if len(core) > _ACT_CHARS), 0)  # none: acts only
    return _Shape("".join(pieces), frozenset(cuts), frozenset(bounds[first_object:]), len(pieces))


_SHAPES: dict[str, _Shape] = {label: _shape(label) for label in sorted(KNOWN_CHARGES)}
_LONGEST_LABEL = max(len(shape.flat) for shape in _SHAPES.values())
_CHARS: dict[str, frozenset[str]] = {label: frozenset(shape.flat) for label, shape in _SHAPES.items()}
_BY_CHAR: dict[str, set[str]] = {}
for _label, _s in _SHAPES.items():
    for _ch in _s.flat:
        _BY_CHAR.setdefault(_ch, set()).add(_label)


def _fit_cost(name: str, shape: _Shape) -> int:
    """Fewest characters a written name (without 罪) leaves out of its own to be a partial form of the label.

    0 is a partial form: the label with runs left out, each starting or ending where two parts meet (非法持有枪支
    leaves 私藏 and 弹药 out of 非法持有|私藏枪支|弹药), the name ending where an object part or the label ends
    (持有毒品 ends inside 持有毒品原植物种子 of 非法买卖|运输|携带|持有毒品原植物种子|幼苗: no form of it). A near form
    also leaves out runs of its own the same way, never its end (携带 and 藏匿 of …、携带、邮寄、储存、藏匿枪支、弹药);
    their length is the cost. Two runs left out of the same side never join (across a cut they would make one run
    that starts and ends inside parts). _NO_FIT when no alignment exists. Dynamic programming, O(n·m).
    """
    wcut = [False] * (len(name) + 1)
    chars: list[str] = []
    for ch in name:
        if ch == "、":
            wcut[len(chars)] = True
        else:
            chars.append(ch)
    w, lab = "".join(chars), shape.flat
    n, m = len(w), len(lab)
    lcut = [j in shape.cuts for j in range(m + 1)]
    # Cost of aligning w[i:] with lab[j:] in four states: free (any run may be left out now), after a run of the
    # label (only the name's may follow), after a run of the name (only the label's), after both (only a match).
    # Row n: the name has ended right after a matched character, where a partial form may end.
    free = [0 if j in shape.ends else _NO_FIT for j in range(m + 1)]
    # min over k in (i, n) of cost_k[j] + k, for runs w[i:k] of the name (cost k - i), all k or k at a cut.
    to_both_all, to_both_cut = [_NO_FIT] * (m + 1), [_NO_FIT] * (m + 1)
    to_name_all, to_name_cut = [_NO_FIT] * (m + 1), [_NO_FIT] * (m + 1)
    for i in range(n - 1, -1, -1):
        both = [free[j + 1] if w[i] == lab[j] else _NO_FIT for j in range(m)] + [_NO_FIT]
        after_label = [min(both[j], (to_both_all if wcut[i] else to_both_cut)[j] - i) for j in range(m + 1)]
        after_name = [_NO_FIT] * (m + 1)
        row = [_NO_FIT] * (m + 1)
        both_all = both_cut = label_all = label_cut = _NO_FIT  # suffix minima over k > j (all / at a cut)
        name_skips = to_name_all if wcut[i] else to_name_cut
        for j in range(m, -1, -1):
            after_name[j] = min(both[j], both_all if lcut[j] else both_cut)
            row[j] = min(both[j], label_all if lcut[j] else label_cut, name_skips[j] - i)
            both_all, label_all = min(both_all, both[j]), min(label_all, after_label[j])
            if lcut[j]:
                both_cut, label_cut = min(both_cut, both[j]), min(label_cut, after_label[j])
        for j in range(m + 1):
            to_both_all[j] = min(to_both_all[j], both[j] + i)
            to_name_all[j] = min(to_name_all[j], after_name[j] + i)
            if wcut[i]:
                to_both_cut[j] = min(to_both_cut[j], both[j] + i)
                to_name_cut[j] = min(to_name_cut[j], after_name[j] + i)
        free = row
    return min(free[0], _NO_FIT)


def _near_allowed(name: str) -> bool:
    """Whether a name may be a near form: an enumeration whose parts are no names on their own (盗窃、诈骗 is two)."""
    parts = name.split("、")
    return len(parts) > 1 and not any(_is_exact(part) for part in parts)


def _fit_rank(name: str, label: str, near: bool) -> tuple[int, int, int, str] | None:
    """How well a name (without 罪) fits a label: (characters of its own left out, parts, length, label); None."""
    shape = _SHAPES.get(label)
    flat_len = len(name) - name.count("、")
    if shape is None or flat_len < _MIN_PARTIAL_CHARS:
        return None
    if not near and flat_len > len(shape.flat):
        return None
    cost = _fit_cost(name, shape)
    limit = flat_len // _NEAR_SHARE if near else 0
    if cost > limit or flat_len - cost < _MIN_PARTIAL_CHARS:
        return None
    return cost, shape.parts, len(shape.flat), label


@lru_cache(maxsize=65536)
def _partial_label(name: str, near: bool = True) -> str | None:
    """The most specific label of which name (no 罪) is a partial form, else (when near) the best near form; or None."""
    flat = name.replace("、", "")
    if not _MIN_PARTIAL_CHARS <= len(flat) <= _LONGEST_LABEL + _LONGEST_LABEL // _NEAR_SHARE:
        return None
    pools = sorted((_BY_CHAR.get(ch, set()) for ch in set(flat)), key=len)
    strict = set(pools[0]).intersection(*pools[1:])
    ranks = [rank for label in strict if (rank := _fit_rank(name, label, near=False))]
    if not ranks and near and _near_allowed(name):  # the name's object (its last two characters) must be the label's
        need = len(flat) - len(flat) // _NEAR_SHARE  # characters of the name the label must have (cheap filter)
        candidates = [
            label
            for label, shape in _SHAPES.items()
            if flat[-2:] in shape.flat and sum(ch in _CHARS[label] for ch in flat) >= need
        ]
        ranks = [rank for label in candidates if (rank := _fit_rank(name, label, near=True))]
    return min(ranks)[-1] if ranks else None


@lru_cache(maxsize=65536)
def _resolve(base: str, near: bool = True) -> str | None:
    """The label a written name (without 罪) stands for: the label, a synonym, a partial or near form; else None.

    A renamed label's old name (or a form of it) stands for its current name (CHARGE_RENAMES).
    """
    name = normalize_charge(base)
    if not name:
        return None
    if name in KNOWN_CHARGES:
        label: str | None = name
    elif name in CHARGE_SYNONYMS:
        label = CHARGE_SYNONYMS[name]
    else:
        label = _partial_label(name[:-1], near)
    return CHARGE_RENAMES.get(label, label) if label else None


def is_known_charge(name: str) -> bool:
    """True when the name is a label, a listed synonym or a partial form of a label (贩卖毒品罪, 非法持有枪支罪)."""
    return _resolve(name) is not None


def canonical_charge(name: str) -> str:
    """The label a name stands for (贩卖毒品 → 走私、贩卖、运输、制造毒品罪, 纵火 → 放火罪, a renamed label's old name
    → its current name); unknown → the name."""
    return _resolve(name) or normalize_charge(name)


def align_charges(names: Iterable[str], gold_labels: Iterable[str] = ()) -> list[str]:
    """Labels of written names, sorted and unique: each name stands for one label (README "How answers are read").

    A label in its own right, or a synonym, is that label (组织卖淫罪 is not a gold 组织、强迫、引诱、容留、介绍卖淫罪);
    the old and the current name of a renamed label are one label (CHARGE_RENAMES), for gold labels passed through
    canonical_charge as the reward and the evaluator pass them.
    A partial or near form is its own label (canonical_charge) when that is a gold label, else the most specific gold
    label it fits (容留卖淫罪 against a gold 组织、强迫、引诱、容留、介绍卖淫罪), else its own label: one name, one
    label, however many gold labels it fits. Unknown names stay as written.
    """
    gold = sorted(set(gold_labels))
    labels = set()
    for name in names:
        label = canonical_charge(name)
        if not label:
            continue
        if label not in gold and not _is_exact(name):
            base = normalize_charge(name)[:-1]
            near = _near_allowed(base)
            ranks = [rank for g in gold if (rank := _fit_rank(base, g, False) or (near and _fit_rank(base, g, True)))]
            label = min(ranks)[-1] if ranks else label
        labels.add(label)
    return sorted(labels)


# ------------------------------------------------------------------------------------------------ free text

# Marks _clean leaves in the text: a boundary (an article cited: 第二百六十四条【盗窃罪】) and an introducer (罪名, a
# colon, an opening bracket: a bare known name after it is that charge). Both also start a name, like 构成.
_BOUNDARY, _INTRO = "\x01", "\x02"
_MARKS = _BOUNDARY + _INTRO
# One str.translate pass: full-width → half-width, whitespace dropped, line breaks end a phrase, closing brackets
# dropped (so 拒不执行[判决、裁定]罪 and [组织、强迫…介绍]卖淫罪 read as CAIL writes them), opening brackets, colons and
# < introduce a name; marks already in the text are dropped.
_CLEAN_TABLE = (
    {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
    | {ord(c): None for c in "]】〕］ \t\f\v\u3000\xa0" + _MARKS}
    | {ord(c): _INTRO for c in "[【〔［"}
    | {ord(c): "。" + _INTRO for c in ":：<＜"}
    | {ord("\n"): "。", ord("\r"): "。"}
)
# Characters that end a phrase (parentheses do not: 偷越国(边)境罪 is one label).
_DELIMS = "。,.;:!?'\"“”‘’《》<>「」『』|…"
_PHRASE = re.compile(f"[^{re.escape(_DELIMS)}]+")
_NUMERAL = r"[\d零〇一二两三四五六七八九十百千]"
_ARTICLE = re.compile(rf"第{_NUMERAL}{{1,8}}条(?:之{_NUMERAL}{{1,3}})?(?:第{_NUMERAL}{{1,4}}[款项])*")
# 罪名 / 罪行 (罪名为, 所犯罪名是): the 罪 ends what stands before it ("盗窃罪名成立"), and a name may follow; not the
# 罪行 of 犯罪行为.
_LABEL_WORD = re.compile(r"(?:罪名|(?<!犯)罪行)(?:为|是)?>*")
# 罪责 / 罪犯 / 罪证 / 犯罪行为 …: the 罪 ends what stands before it and the word after it is no name.
_NOT_NAME = re.compile(r"罪(?=[名行责犯证状过刑数错])")
_INTRO_CARRY = re.compile(f"{_INTRO}[{_INTRO}。]+")  # 罪名：⏎盗窃: the name the label introduces is on the next line
_LIST_SEP = re.compile(r"以及|[、和及与或/]")
# Words after which a charge name starts; the strong ones also bound an unknown name.
_STRONG = (
    r"(?<![侵冒违触进主从惯累嫌罪逃毒正唆胁])犯(?!罪)|构成|涉嫌|认定为|认定|定性为|判定为|成立|符合|涉及|触犯"
    rf"|[{_MARKS}]"
)
_TRIGGER = re.compile(rf"(?P<strong>{_STRONG})|以|为|是|系|属于|即|的")
_NEGATED = re.compile(
    r"(?:不|未|没有|并非|并不|并未|不能|不应)(?:构成|成立|属于|涉嫌|认定为|认定|是|犯)|而非|而不是|并非|排除"
    r"|(?:不|未|没有)(?:符合|涉及|触犯)(?!(?:安全|卫生)?标准)"  # not 生产、销售不符合安全标准的食品罪
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
# Pieces of a list tried as one name: the most a label has, plus two acts a near form may add.
_MAX_LABEL_PIECES = max(len(_LIST_SEP.split(label)) for label in KNOWN_CHARGES) + 2
_SEPARATORS = "、和及与或/"


def _clean(text: str) -> str:
    """Full-width → half-width, whitespace and closing brackets removed, marks where names start (see _MARKS)."""
    text = _ARTICLE.sub(_BOUNDARY, text.translate(_CLEAN_TABLE))
    text = _NOT_NAME.sub("罪。", _LABEL_WORD.sub("罪。" + _INTRO, text))
    return _INTRO_CARRY.sub("。" + _INTRO, _NOTE.sub("。", _MARKER.sub("。", text)))


def _unmarked(text: str) -> str:
    """text without the marks _clean left in it."""
    return text.replace(_BOUNDARY, "").replace(_INTRO, "")


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


def _read_list(text: str, allow_unknown: bool, near: bool = True) -> list[str] | None:
    """Names in a list such as "盗窃、诈骗": whole known names, longest first; None when a piece is unknown and
    allow_unknown is False, else the unknown name is kept as written (or dropped when it is junk)."""
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
            label = _resolve(written, near and j == len(bounds))  # a near form ends the list: its object is last
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
            if _is_junk(piece):
                i += 1
                continue
            # An unknown piece is an act of the name that follows it, up to a piece that is a name on its own:
            # 窝藏、毁灭证据罪 is one (unknown) name, not 窝藏罪 plus a partial form of a perjury label.
            j = i + 1
            while j < len(bounds) and not _is_exact(text[bounds[j][0] : bounds[j][1]]):
                j += 1
            found.append(normalize_charge(_FILL.sub("", text[bounds[i][0] : bounds[j - 1][1]])))
            i = j
    return found


@lru_cache(maxsize=16384)
def _read_phrase(phrase: str, allow_unknown: bool) -> tuple[str, ...]:
    """Charge names in the text before one 罪 (or, without 罪, in one phrase); see the module docstring."""
    phrase = phrase[-_MAX_PHRASE:].lstrip(_SEPARATORS + _MARKS)
    if not phrase or _NEGATED.search(phrase):
        return ()
    triggers = list(_TRIGGER.finditer(phrase))[-_MAX_TRIGGERS:]
    starts = [0] + [m.end() for m in triggers]
    for near in (False, True):  # partial forms at every start first: 犯组织、强迫… is no near form of a label
        for start in starts:
            tail = _unmarked(phrase[start:])
            for text in dict.fromkeys((tail, _FILL.sub("", tail))):
                if text:
                    names = _read_list(text, allow_unknown=False, near=near)
                    if names:
                        return tuple(names)
    if not allow_unknown:
        return ()
    strong = [m.end() for m in triggers if m.group("strong")]
    start = strong[-1] if strong else (triggers[-1].end() if triggers else 0)
    return tuple(_read_list(_FILL.sub("", _unmarked(phrase[start:])), allow_unknown=True) or ())


def _read_bare(rest: str) -> tuple[str, ...]:
    """Whole known names in text without 罪, read between marks (【罪名】聚众斗殴【法条】…: the bracket after a name
    ends it); where that reads none, the text as a whole (拒不执行[判决、裁定] as CAIL writes it)."""
    parts = [part for part in rest.split(_INTRO)[:_MAX_PIECES] if part]
    names = tuple(name for part in parts for name in _read_phrase(part, allow_unknown=False))
    return names or (_read_phrase(rest, allow_unknown=False) if len(parts) > 1 else ())


def _name_phrases(phrase: str) -> tuple[list[str], str]:
    """Split one phrase at the 罪 that end names: (texts before each such 罪, the rest after the last)."""
    names: list[str] = []
    start = 0
    pos = phrase.find("罪")
    while pos >= 0:
        nxt = phrase[pos + 1 : pos + 2]
        inside_word = pos > 0 and phrase[pos - 1] == "犯" and nxt and nxt not in "罪、和及与或/()" + _MARKS
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
        texts = [phrase for before, _ in split for phrase in before if phrase.strip(_SEPARATORS + _MARKS)]
        for phrase in texts[:_MAX_NAMES]:
            names.extend(_read_phrase(phrase, allow_unknown=True))
        # After 罪名, a colon or a bracket, a bare known name is a charge too: 罪名：诈骗 in an answer with other …罪.
        rests = [rest for phrase, (_, rest) in zip(phrases, split, strict=True) if _INTRO in phrase and rest]
    else:  # no "…罪" anywhere: an answer such as "盗窃" or "盗窃、诈骗" (whole known names only)
        rests = [rest for _, rest in split]
    for rest in rests[:_MAX_NAMES]:
        names.extend(_read_bare(rest))
    return tuple(normalize_charges(names))


def parse_charges(text: str) -> list[str]:
    """Charges named in free text ("盗窃罪、诈骗罪", "被告人张某犯盗窃罪", "盗窃"), normalized and sorted, as written.

    Unknown …罪 names are kept (they count as wrong labels); canonical_charge maps each to its label.
    """
    return list(_parse_charges(text if isinstance(text, str) else ""))
