"""Chinese numerals and durations: "两"→2, "一年零十个月"→22 months (generic, no legal knowledge)."""

from __future__ import annotations

import math
import re
from functools import lru_cache

import cn2an

__all__ = [
    "CN_NUMBER_PATTERN",
    "NUMBER_PATTERN",
    "cn_to_int",
    "cn_to_number",
    "find_durations",
    "parse_duration_months",
    "to_halfwidth",
]

# Full-width ASCII (！..～) → half-width; the ideographic space → space. Chinese punctuation (、。，is U+FF0C → ",") is
# otherwise left alone, so 、 stays 、.
_HALFWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_HALFWIDTH[0x3000] = 0x20

CN_NUMBER_PATTERN = r"[零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟廿卅幺]+"
"""Regex for a run of Chinese numeral characters (no decimals)."""
NUMBER_PATTERN = rf"(?:\d+(?:\.\d+)?|{CN_NUMBER_PATTERN})"
"""Regex for one Arabic (optionally decimal) or Chinese number; apply it to text passed through to_halfwidth."""

_ARABIC = re.compile(r"\d+(?:\.\d+)?")
_ARABIC_WITH_UNIT = re.compile(r"(\d+(?:\.\d+)?)([十百千万亿]+)")
_THOUSANDS_SEP = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")
_CN_DIGITS_ONLY = re.compile(r"[零〇一二三四五六七八九]{2,}")
_CN_DIGIT_VALUE = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0}
_CN_UNIT_VALUE = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_CN_REPLACE = str.maketrans({"两": "二", "〇": "零", "幺": "一", "貳": "贰"})


_HAS_FULLWIDTH = re.compile("[\uff01-\uff5e\u3000]")


def _halfwidth_char(m: re.Match[str]) -> str:
    """Half-width form of one full-width character (faster than str.translate on mostly-CJK text)."""
    return chr(_HALFWIDTH[ord(m.group(0))])


def to_halfwidth(text: str) -> str:
    """Full-width ASCII letters/digits/punctuation → half-width (keeps 、。 and CJK text)."""
    return _HAS_FULLWIDTH.sub(_halfwidth_char, text)


def _cn_to_number_raw(s: str) -> float | None:
    """Convert a cleaned numeral string with cn2an; None when cn2an rejects it."""
    try:
        value = cn2an.cn2an(s, "normal")
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return float(value)


@lru_cache(maxsize=8192)
def cn_to_number(text: str) -> float | None:
    """A number written in Chinese or Arabic numerals (also "1.5万", "１２", "1,000", "零十") → float; else None.

    Numbers beyond MAX_NUMBER (or not finite) are None: no count in a verdict is that large.
    """
    value = _cn_to_number(text[: MAX_NUMBER_CHARS + 1]) if len(text) <= MAX_NUMBER_CHARS else None
    return value if value is not None and math.isfinite(value) and abs(value) <= MAX_NUMBER else None


MAX_NUMBER = 1e15
"""Largest number cn_to_number returns (a fine of a thousand trillion yuan); larger ones are unreadable."""
MAX_NUMBER_CHARS = 64


def _cn_to_number(text: str) -> float | None:
    """Worker of cn_to_number, without the bounds."""
    s = _THOUSANDS_SEP.sub("", to_halfwidth(text).strip())
    if not s:
        return None
    if _ARABIC.fullmatch(s):
        return float(s)
    m = _ARABIC_WITH_UNIT.fullmatch(s)
    if m:
        unit = 1
        for ch in m.group(2):
            unit *= _CN_UNIT_VALUE[ch]
        return float(m.group(1)) * unit
    s = s.replace("廿", "二十").replace("卅", "三十").translate(_CN_REPLACE)
    if _CN_DIGITS_ONLY.fullmatch(s):  # digit by digit: "二〇一九" → 2019
        return float("".join(str(_CN_DIGIT_VALUE[c]) for c in s))
    s = s.lstrip("零")  # "零十" (as in 一年零十个月) → "十"; cn2an rejects a leading 零 before a unit
    if not s:
        return 0.0
    return _cn_to_number_raw(s)


@lru_cache(maxsize=8192)
def cn_to_int(text: str) -> int | None:
    """Whole number from numerals: "三"→3, "十二"→12, "两"→2, "一百零八"→108, "１２"→12; else None."""
    value = cn_to_number(text)
    if value is None or value != int(value):
        return None
    return int(value)


# One duration: [N年][零/又][N个月] | N年半 | 半年 | N个半月.  N is Arabic (decimal allowed) or Chinese; it starts
# where a numeral run starts and takes the whole run (possessive), so a long run of digits costs linear time.
_CN_DIGITS = "零〇一二两三四五六七八九十百廿壹贰叁肆伍陆柒捌玖拾佰"
_N = rf"(?:(?<![\d.])\d++(?:\.\d++)?+|(?<![{_CN_DIGITS}])[{_CN_DIGITS}]++)"
MAX_TEXT_CHARS = 10_000
"""find_durations reads this many characters only (bounded time on any input)."""
_DURATION = re.compile(
    rf"""
    (?=[\d零〇一二两三四五六七八九十百廿壹贰叁肆伍陆柒捌玖拾佰半])  # cheap first-character filter (6x faster scan)
    (?:
        (?P<y>{_N})\s*年(?P<yh>半)?
        (?:\s*[零又]?\s*(?P<ym>{_N})\s*(?P<ymu>个半月|个月|月))?
      | (?P<hy>半)\s*年
      | (?P<hm>半)\s*个\s*月
      | (?P<m>{_N})\s*(?P<mu>个半月|个月|月)
      | (?<![\d.])(?P<ey>\d++(?:\.\d++)?+)\s*+(?:years?|yrs?)(?![a-z])
        (?:\s*,?\s*(?:and\s*)?(?P<em>\d++)\s*(?:months?|mos?)(?![a-z]))?
      | (?<![\d.])(?P<emo>\d++(?:\.\d++)?+)\s*+(?:months?|mos?)(?![a-z])
    )
    """,
    re.VERBOSE | re.IGNORECASE,
)
# "3月5日", "6月份", "六月十五号": a calendar month, not a duration.
_DATE_TAIL = re.compile(rf"\s*(?:{_N}\s*[日号]|份|初|底|中旬|上旬|下旬)")
_YEAR_TAIL = re.compile(r"(?:级|代|龄)")


def _months_of(value: str | None, half: bool = False) -> float | None:
    """Numeric value of one matched number (None when unreadable), plus one half when `half`."""
    if value is None:
        return 0.5 if half else 0.0
    number = cn_to_number(value)
    if number is None or number >= 12_000:  # no sentence is a thousand years long
        return None
    return number + (0.5 if half else 0.0)


def _round_half_up(x: float) -> int:
    """Round to the nearest int, halves up (3.5 months → 4)."""
    return int(x + 0.5)


def _match_months(m: re.Match[str], text: str) -> int | None:
    """Months of one duration match, or None when it is a date / unreadable."""
    g = m.groupdict()
    if g["hy"]:
        return 6
    if g["hm"]:
        return 1
    if g["ey"] is not None:
        years, extra = cn_to_number(g["ey"]), cn_to_number(g["em"] or "0")
        if years is None or extra is None or years >= 1000:
            return None
        return _round_half_up(years * 12 + extra)
    if g["emo"] is not None:
        months = cn_to_number(g["emo"])
        return None if months is None or months >= 12_000 else _round_half_up(months)
    end = m.end()  # match at a position: slicing the rest of the text per duration would be quadratic
    if g["y"] is not None:
        years = _months_of(g["y"])
        if years is None or years >= 1000 or _YEAR_TAIL.match(text, end):  # 2019年 is a date, 三年级 a grade
            return None
        if g["ymu"] == "月" and _DATE_TAIL.match(text, end):  # 2年3月5日
            return None
        years += 0.5 if g["yh"] else 0.0
        months = _months_of(g["ym"], half=g["ymu"] == "个半月") if g["ym"] is not None else 0.0
        if months is None:
            return None
        return _round_half_up(years * 12 + months)
    if g["mu"] == "月" and _DATE_TAIL.match(text, end):
        return None
    months = _months_of(g["m"], half=g["mu"] == "个半月")
    return None if months is None else _round_half_up(months)


@lru_cache(maxsize=8192)
def find_durations(text: str) -> tuple[tuple[int, int, int], ...]:
    """All durations in text as (start, end, months); dates such as 2019年6月 and 3月5日 are skipped."""
    norm = to_halfwidth(text[:MAX_TEXT_CHARS])
    found: list[tuple[int, int, int]] = []
    for m in _DURATION.finditer(norm):
        months = _match_months(m, norm)
        if months is not None:
            found.append((m.start(), m.end(), months))
    return tuple(found)


def parse_duration_months(text: str) -> int | None:
    """First duration in text in months: "1年2个月"→14, "两年"→24, "一年零六个月"→18, "半年"→6; none → None."""
    found = find_durations(text)
    return found[0][2] if found else None
