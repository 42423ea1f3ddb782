"""Principal penalties (刑期): parse 有期徒刑/拘役/管制/无期徒刑/死刑 from text, format them back, read CAIL meta.

Reading policy (README "How answers are read"):
- Quoted text (“…”, 「…」, 『…』, "…") is statute or quotation, not the answer: it is read only when nothing else
  names a term. A clause that states a range or an alternative (三年以下有期徒刑, 三年以上十年以下, 三年到五年,
  3-5年, 拘役或者管制, 最高刑期为十年, 并处或者单处罚金) is no sentence and is skipped, fine words included; so an
  answer that gives only a range or a hedge names no term (unreadable, like statute text: a range is not a
  prediction, and reading one bound would pay for hedging). 三年左右 is a point estimate and reads as 36 months.
- A number without a unit (12, 刑期：12) is unreadable: 12 could be months or years. Only where the prompt fixes the
  unit (``bare_months``: the task's instruction asks for the term in months, data.domains.legal.tasks.fixes_months) is a
  bare number that is the whole answer read as that many months.
- A fine is a sentence without prison (单处罚金, 判处罚金…) only on its own: 并处罚金 adds a fine to a principal
  penalty, and beside a range quoted from the statute (三年以下有期徒刑、拘役或者管制，并处罚金) a fine names no term.
- An acquittal (无罪, 不构成犯罪, 不构成××罪, 不负刑事责任) is unreadable, not "no sentence": every item of the term
  task is a conviction, and 免予刑事处罚 / 单处罚金 are the convicted-without-prison answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import cn2an

from judge.cn_numerals import cn_to_int, find_durations, to_halfwidth

MAX_TEXT_CHARS = 10_000  # readers look at this many characters only: bounded time on any input

__all__ = [
    "PENALTIES",
    "TERM_KINDS",
    "Term",
    "cail_code",
    "format_months",
    "format_term",
    "parse_term",
    "term_from_cail",
    "term_to_cail",
]

TermKind = Literal["fixed", "life", "death", "none"]
TERM_KINDS: tuple[str, ...] = ("fixed", "life", "death", "none")
PENALTIES: tuple[str, ...] = ("有期徒刑", "拘役", "管制", "")


@dataclass(frozen=True)
class Term:
    """A principal penalty: fixed months (有期徒刑/拘役/管制, or "" when unspecified), life, death or none."""

    kind: TermKind
    months: int = 0
    penalty: str = ""

    def __post_init__(self) -> None:
        """Reject impossible values early, naming the field."""
        if self.kind not in TERM_KINDS:
            raise ValueError(f"Term.kind must be one of {TERM_KINDS}, got {self.kind!r}")
        if isinstance(self.months, bool) or not isinstance(self.months, int) or self.months < 0:
            raise ValueError(f"Term.months must be an int >= 0, got {self.months!r}")
        if self.kind != "fixed" and self.months != 0:
            raise ValueError(f"Term.months must be 0 for kind {self.kind!r}, got {self.months}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"Term.penalty must be one of {PENALTIES}, got {self.penalty!r}")
        if self.kind != "fixed" and self.penalty:
            raise ValueError(f"Term.penalty must be empty for kind {self.kind!r}, got {self.penalty!r}")


NONE_TERM = Term("none")

_WS = re.compile(r"\s+")
_VERDICT_START = re.compile(r"判决如下|裁定如下")
_FINAL_MARKER = re.compile(r"决定执行|合并执行|决定合并执行")
_SUM_MARKER = re.compile(r"总和刑期")
_DEATH = re.compile(r"死刑|死缓")
_LIFE = re.compile(r"无期(?:徒刑)?(?!限)")
# A fine that is the whole sentence: 单处罚金, 判处罚金; any other fine (not 并处罚金) only when no range was quoted.
_FINE_ONLY = re.compile(r"(?:单处|判处|仅处|只处)罚金")
_FINE = re.compile(r"(?<!并处)罚金")
# A whole answer that is one number, after an optional label: 12, 刑期：12, [刑期]十二.
_BARE_NUMBER = re.compile(
    r"(?:[\[【]?(?:最终)?(?:答案|刑期|主刑|预测刑期)[\]】]?[:：]?)?(?P<n>\d{1,4}|[零〇一二两三四五六七八九十百]{1,6})[。.]?"
)
_NO_PUNISHMENT = re.compile(r"免予刑事处罚|免于刑事处罚|免除刑事处罚|免予刑事处分")
_QUOTED = re.compile(r"“[^“”]{0,2000}”|「[^「」]{0,2000}」|『[^『』]{0,2000}』|\"[^\"]{0,2000}\"")
_CLAUSE = re.compile(r"[^,.;:!?()\[\]【】<>。；：，…\n]+")
_CN = "零〇一二两三四五六七八九十百"
_NUM = rf"(?<![\d{_CN}])(?:\d++(?:\.\d++)?+|[{_CN}]++)"
# A clause that states a range or alternatives: statute text, or a hedged answer.
_RANGE_CLAUSE = re.compile(
    rf"或者|或(?=[处判拘管有死无罚单\d{_CN}])|最高|最低|法定刑|幅度|之间|不等|不超过|不少于"
    rf"|{_NUM}(?:年|个?月)?+(?:以上|以下|以内)"
    rf"|{_NUM}(?:年|个?月)?+(?:到|至|-|~|—|－|～)(?:{_NUM})"
)
# Keyword right before the duration: 有期徒刑三年, 拘役：五个月, 有期徒刑，刑期为一年.
_PENALTY_BEFORE = re.compile(r"(有期徒刑|徒刑|拘役|管制)[,，:：]?(?:刑期)?[为是]?$")
# Keyword right after: 三年有期徒刑, 六个月的拘役.
_PENALTY_AFTER = re.compile(r"^的?(有期徒刑|徒刑|拘役|管制)")
_PENALTY_NAME = {"有期徒刑": "有期徒刑", "徒刑": "有期徒刑", "拘役": "拘役", "管制": "管制"}
# Durations that are not the principal penalty: probation, suspension of death, deprivation of rights, bans.
_NOT_TERM_BEFORE = re.compile(
    r"(?:缓刑|缓期|考验期|剥夺政治权利|限制减刑|禁止|驱逐出境|减刑|假释|执行期间|已服刑|服刑|羁押|刑满释放)[^,，。；;]{0,4}$"
)
_NOT_TERM_AFTER = re.compile(r"^(?:执行|以上|以下|以内|之内|内|前|后|之后|之前|来|以来|期间|间|多|余|许|有余)")
# 死刑/无期徒刑 inside a statutory range ("处十年以上有期徒刑、无期徒刑或者死刑") is not a sentence.
_RANGE_BEFORE = ("或者", "或", "、", "以上", "以下", "适用", "可以判处", "应当判处")
_RANGE_AFTER = ("或者", "或")


def _in_range_clause(norm: str, start: int, end: int) -> bool:
    """True when a penalty word at norm[start:end] is part of a statutory range, not a decided sentence."""
    return norm[max(0, start - 4) : start].endswith(_RANGE_BEFORE) or norm[end : end + 2].startswith(_RANGE_AFTER)


def _candidates(norm: str) -> list[tuple[int, Term, bool]]:
    """All penalties mentioned in norm as (position, term, is_bare), sorted by position."""
    found: list[tuple[int, Term, bool]] = []
    for m in _DEATH.finditer(norm):
        if not _in_range_clause(norm, m.start(), m.end()):
            found.append((m.start(), Term("death"), False))
    for m in _LIFE.finditer(norm):
        if not _in_range_clause(norm, m.start(), m.end()):
            found.append((m.start(), Term("life"), False))
    for m in _NO_PUNISHMENT.finditer(norm):
        found.append((m.start(), NONE_TERM, False))
    for start, end, months in find_durations(norm):
        before, after = norm[max(0, start - 12) : start], norm[end : end + 6]
        kw = _PENALTY_BEFORE.search(before)
        if kw:
            found.append((start - len(kw.group(0)), Term("fixed", months, _PENALTY_NAME[kw.group(1)]), False))
            continue
        kw = _PENALTY_AFTER.match(after)
        if kw:
            found.append((start, Term("fixed", months, _PENALTY_NAME[kw.group(1)]), False))
            continue
        if _NOT_TERM_BEFORE.search(before) or _NOT_TERM_AFTER.match(after):
            continue
        found.append((start, Term("fixed", months), True))
    found.sort(key=lambda c: c[0])
    return found


def _without_ranges(norm: str) -> str:
    """norm with every clause that states a range or alternatives blanked out (see the module docstring)."""
    return _CLAUSE.sub(lambda m: "。" if _RANGE_CLAUSE.search(m.group(0)) else m.group(0), norm)


@lru_cache(maxsize=16384)
def find_term(text: str, bare_months: bool = False) -> Term | None:
    """The principal penalty in text, Term("none") for an exemption or a fine-only sentence, None when none is named.

    bare_months: the prompt fixed the unit as months, so a whole answer that is one number (12) is that many months.
    """
    norm = _WS.sub("", to_halfwidth((text if isinstance(text, str) else "")[:MAX_TEXT_CHARS]))
    if bare_months:
        bare = _BARE_NUMBER.fullmatch(norm)
        months = cn_to_int(bare.group("n")) if bare else None
        if months is not None:
            return Term("fixed", months) if months > 0 else NONE_TERM
    verdict = _VERDICT_START.search(norm)
    if verdict:
        norm = norm[verdict.end() :]
    unquoted = _QUOTED.sub("。", norm)
    found = _term_in(_without_ranges(unquoted), unquoted)
    if found is None and unquoted != norm:  # an answer written in quotes: “有期徒刑一年”
        found = _term_in(_without_ranges(norm), norm)
    return found


def _term_in(norm: str, before_ranges: str) -> Term | None:
    """find_term on text already cut to the verdict, without quotes and range clauses (before_ranges: with them)."""
    candidates = _candidates(norm)
    if not candidates:
        # A fine alone (单处罚金, 判处罚金…) is a sentence without prison, not a missing answer; a fine next to a range
        # quoted from the statute is the statute's (…或者管制，并处罚金), and 并处罚金 is never alone.
        if _FINE_ONLY.search(norm) or (_FINE.search(norm) and norm == before_ranges):
            return NONE_TERM
        return None
    for marker_re in (_FINAL_MARKER, _SUM_MARKER):
        marker = marker_re.search(norm)
        if marker:
            after = [term for pos, term, _ in candidates if pos >= marker.end()]
            if after:
                return after[0]
    explicit = [term for _, term, bare in candidates if not bare]
    return explicit[0] if explicit else candidates[0][1]


def parse_term(text: str) -> Term:
    """The principal penalty in text (probation ignored; 决定执行 wins in 数罪并罚); no term → Term("none")."""
    return find_term(text) or NONE_TERM


@lru_cache(maxsize=1024)
def _cn(n: int) -> str:
    """Chinese numeral for a small non-negative int (2 → 二, 25 → 二十五)."""
    return cn2an.an2cn(n)


def format_months(months: int) -> str:
    """Months as Chinese text: 42 → 三年六个月, 12 → 一年, 5 → 五个月, 0 → 零个月."""
    years, rest = divmod(months, 12)
    if months == 0:
        return "零个月"
    return (f"{_cn(years)}年" if years else "") + (f"{_cn(rest)}个月" if rest else "")


def format_term(term: Term) -> str:
    """Canonical text: 有期徒刑三年六个月 / 拘役五个月 / 管制一年 / 无期徒刑 / 死刑 / 免予刑事处罚."""
    if term.kind == "life":
        return "无期徒刑"
    if term.kind == "death":
        return "死刑"
    if term.kind == "none":
        return "免予刑事处罚"
    penalty = term.penalty or ("拘役" if term.months < 6 else "有期徒刑")
    return penalty + format_months(term.months)


def _flag(meta_term: dict[str, Any], key: str) -> bool:
    """A boolean CAIL flag (missing → False); other types raise ValueError."""
    value = meta_term.get(key, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"term_of_imprisonment.{key} must be a bool, got {value!r}")


def term_from_cail(meta_term: dict[str, Any]) -> Term:
    """CAIL2018 term_of_imprisonment {death_penalty, life_imprisonment, imprisonment} → Term (death wins)."""
    if not isinstance(meta_term, dict):
        raise ValueError(f"term_of_imprisonment must be a dict, got {type(meta_term).__name__}")
    if "imprisonment" not in meta_term:
        raise ValueError("term_of_imprisonment.imprisonment is missing")
    death, life = _flag(meta_term, "death_penalty"), _flag(meta_term, "life_imprisonment")
    if death:
        return Term("death")
    if life:
        return Term("life")
    months = meta_term["imprisonment"]
    if isinstance(months, float) and months.is_integer():
        months = int(months)
    if isinstance(months, bool) or not isinstance(months, int) or months < 0:
        raise ValueError(f"term_of_imprisonment.imprisonment must be an int >= 0 (months), got {months!r}")
    return Term("fixed", months) if months > 0 else NONE_TERM


def term_to_cail(term: Term) -> dict[str, Any]:
    """Term → CAIL2018 term_of_imprisonment dict (inverse of term_from_cail up to the penalty name)."""
    return {
        "death_penalty": term.kind == "death",
        "life_imprisonment": term.kind == "life",
        "imprisonment": term.months if term.kind == "fixed" else 0,
    }


def cail_code(term: Term) -> int:
    """CAIL2018 scorer coding: death → -2, life → -1, otherwise months (none → 0)."""
    return {"death": -2, "life": -1}.get(term.kind, term.months)
