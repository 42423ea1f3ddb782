"""Criminal Law article numbers (法条): "第二百六十四条" / "第264条" / "264" → 264.

What counts (README "How answers are read"): the articles the answer cites, not those that the statute text it
quotes refers to. Quoted text (“…”, 「…」, 『…』, "…") is read only when nothing outside quotes cites an article, and a
citation of 本法第…条 (the wording of the statute itself: "依照本法第三百四十七条的规定定罪处罚") is a
cross-reference, not a citation. A negated citation is no citation either, as 不构成盗窃罪 is no charge: 不适用第65条,
第65条不适用, 不符合第67条, 而非第263条, and 第374条……，不构成该罪 (a later clause of the sentence that negates 该罪 /
该条 / 本条 …, the crime or article just cited).
"""

from __future__ import annotations

import re
from functools import lru_cache

from judge.cn_numerals import cn_to_int, to_halfwidth

__all__ = ["KNOWN_ARTICLES", "is_criminal_law_title", "parse_article", "parse_articles"]

KNOWN_ARTICLES: frozenset[int] = frozenset(range(1, 453))
"""Article numbers of the PRC Criminal Law (1..452)."""

MAX_TEXT_CHARS = 10_000  # readers look at this many characters only: bounded time on any input
_WS = re.compile(r"\s+")
# Possessive runs: "第" + a long run of digits without 条 costs linear time, not quadratic.
_NUM = r"(?:\d++|[零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟廿卅幺]++)"
_LIST_SEP = r"(?:、|,|，|和|及|与|以及)"
# Sequential scan: a law title switches the law the following articles belong to; 。 ends the scope.
_TOKEN = re.compile(
    rf"《(?P<title>[^》]{{1,80}})》"
    rf"|(?P<law>刑事诉讼法|刑法)"
    rf"|(?P<end>[。\n])"
    rf"|(?P<ref>本法)?第(?P<nums>{_NUM}(?:{_LIST_SEP}第?{_NUM}){{0,40}}+)条"
)
_QUOTED = re.compile(r"“[^“”]{0,2000}”|「[^「」]{0,2000}」|『[^『』]{0,2000}』|\"[^\"]{0,2000}\"")
_SPLIT_NUMS = re.compile(rf"{_LIST_SEP}第?")
# Negation around a citation: right before it (不适用第65条) or right after it (第65条不适用); later in its sentence,
# of what it names (第374条……，不构成该罪). Windows are bounded: linear time on any input.
_SENTENCE_END = re.compile(r"[。；;\n]")
_NEG_WINDOW = 40
_NEG_SENTENCE = 120
_NEG_VERB = (
    r"(?:不|未|没有|无须|无需|并不|并未|不应|不能|不予|不再)"
    r"(?:适用|依据|依照|援引|引用|符合|构成|属于|触犯|违反|涉及|成立)"
)
_LAW = r"(?:《[^》]{0,30}》|中华人民共和国刑法|刑法)?"
_NEG_BEFORE = re.compile(rf"(?:{_NEG_VERB}|而非|而不是|并非|排除){_LAW}$")  # right before: 不适用刑法第65条
_NEG_AFTER = re.compile(rf"(?:(?:的|之|关于[^，,；;。]{{0,12}}的)?规定)?(?:对本案|于本案|本案)?{_NEG_VERB}")
_NEG_ANAPHOR = re.compile(rf"{_NEG_VERB}(?:该|此|本|上述|前述|上列)(?:罪|条|规定|条款|款|项|法条|罪名)")
_NOT_CRIMINAL_TITLE = ("诉讼", "修正案", "解释", "规定", "意见", "决定", "批复", "通知", "纪要")
# Bare numbers (answers like "264, 67"): not years, money, durations, counts or decimals.
_BARE = re.compile(r"(?<![\d.¥$])\d{1,3}(?!\d|,\d{3}|\.\d)")
_BARE_DENY_AFTER = re.compile(
    r"[年月日号元万千百亿岁次人名个件克斤吨米%款项时分秒天周倍辆台部只头棵株亩平张份余多a-zA-Z]"
)


def is_criminal_law_title(title: str) -> bool:
    """True for 《中华人民共和国刑法》/《刑法》, False for other laws, amendments and judicial interpretations."""
    return "刑法" in title and not any(word in title for word in _NOT_CRIMINAL_TITLE)


def _negated(norm: str, start: int, end: int) -> bool:
    """Whether the citation at norm[start:end] is negated (see the module docstring)."""
    if _NEG_BEFORE.search(norm[max(0, start - _NEG_WINDOW) : start]):
        return True
    sentence = norm[end : end + _NEG_SENTENCE]
    stop = _SENTENCE_END.search(sentence)
    sentence = sentence[: stop.start()] if stop else sentence
    return bool(_NEG_AFTER.match(sentence) or _NEG_ANAPHOR.search(sentence))


def _article_forms(norm: str) -> tuple[list[int], bool]:
    """Numbers of 第…条 citations of the Criminal Law (or of no named law), in order; and whether any 第…条 was seen."""
    found: list[int] = []
    seen = False
    criminal: bool | None = None  # None: no law named yet in this sentence
    for m in _TOKEN.finditer(norm):
        if m.group("title") is not None:
            criminal = is_criminal_law_title(m.group("title"))
        elif m.group("law") is not None:
            criminal = m.group("law") == "刑法"
        elif m.group("end") is not None:
            criminal = None
        else:
            seen = True
            if criminal is False or m.group("ref") or _negated(norm, m.start(), m.end()):
                continue
            for part in _SPLIT_NUMS.split(m.group("nums")):
                n = cn_to_int(part)
                if n is not None and n > 0:
                    found.append(n)
    return found, seen


def _bare_numbers(norm: str) -> list[int]:
    """Plain numbers that can be articles (1..452), skipping amounts, dates, durations and decimals."""
    found: list[int] = []
    for m in _BARE.finditer(norm):
        if _BARE_DENY_AFTER.match(norm, m.end()):
            continue
        n = int(m.group(0))
        if n in KNOWN_ARTICLES:
            found.append(n)
    return found


@lru_cache(maxsize=16384)
def _articles_in_order(text: str) -> tuple[int, ...]:
    """Article numbers in the order they appear (duplicates kept)."""
    norm = _WS.sub("", to_halfwidth(text[:MAX_TEXT_CHARS]))
    unquoted = _QUOTED.sub("。", norm)
    for view in dict.fromkeys((unquoted, norm)):  # quoted text only when nothing else cites an article
        found, seen = _article_forms(view)
        if not seen:
            found = _bare_numbers(view)
        if found:
            return tuple(found)
    return ()


def parse_article(text: str) -> int | None:
    """The first article number in text: "第二百六十四条"→264, "第264条"→264, "264"→264; none → None."""
    found = _articles_in_order(text if isinstance(text, str) else "")
    return found[0] if found else None


def parse_articles(text: str) -> list[int]:
    """All Criminal Law article numbers in text, unique and sorted (other laws' articles are skipped)."""
    return sorted(set(_articles_in_order(text if isinstance(text, str) else "")))
