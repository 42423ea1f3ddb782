"""Read the judge's answer: a grade 0/1/2, or a prison-term error in months, from free text.

Both parsers normalise the text first (NFKC: full-width digits and punctuation become ASCII, "２" → "2", "：" → ":").

parse_grade rule (first step that finds anything decides):
1. Marked grades: a marker word — 结果 评分 得分 打分 分数 评级 评定 判定 返回 输出 给出 给 得 grade score rating
   result — followed by optional separators (":", "=", "为", "是", quotes, "*", brackets) and then a grade 0/1/2
   (or the single Chinese numeral 零/一/二/两 followed by 分 or the end of a clause). JSON such as {"grade": 2} is
   covered by this step. "结果：1或2" yields both 1 and 2.
2. Otherwise lone grade tokens: a digit 0/1/2 that is not part of another number and not a quantity — not next to
   other digits or a decimal point, not after 第 / 满分 / 总分 / 最高 / 最低, not inside a range such as "0-2",
   "0~2", "0到2", and not followed by a unit (年 月 日 天 条 款 项 号 元 万 千 百 个 岁 次 人 名 件 %). "2分" counts.
3. Exactly one distinct grade found → that grade; several distinct grades or none → None.
Grade words without a digit ("完全正确") are not read: the prompt asks for a digit.

parse_error_months rule:
1. JSON {"error_months": N} (or "error"/"误差") → N.
2. Zero phrases — 没有误差, 无误差, 不存在误差, 零误差, 没有差距/差异/偏差, 完全一致/完全相同 (not after 不/非),
   "no error", "exact match" — count as 0.
3. Marked errors: after each marker (误差 相差 差距 差值 偏差 差了 error difference "off by") the rest of that
   clause (up to ，。；,;!? or a line break) is read as a duration with judge.cn_numerals.parse_duration_months
   ("1年2个月" → 14, "两年" → 24, "半年" → 6, "十八个月" → 18, "1 year 2 months", "6 months"), or "half a year",
   or as a bare number of months ("为0", "6", "十八").
4. Steps 2–3 found exactly one distinct value → it; several → None. Nothing found → the only duration in the
   whole text (judge.cn_numerals.find_durations; two or more → None), else the text as one bare number.
Negative numbers are never read; an error is a magnitude.

Both read at most MAX_REPLY_CHARS characters (a judge answers in max_tokens tokens; a longer reply is cut first, so
reading takes bounded time whatever a server sends). ``is_declined`` tells a deliberate "无法判断" (the term prompt
asks for it when the prediction names no term) from an unreadable reply.
"""

from __future__ import annotations

import json
import re
import unicodedata

from judge.cn_numerals import cn_to_int, find_durations, parse_duration_months

MAX_REPLY_CHARS = 512  # max_tokens=32 tokens is ~100 characters; the numeral readers are quadratic on digit runs
# The term prompt's answer for a prediction without a readable term (judge/prompts.yaml).
TERM_UNDECIDABLE = "无法判断"

# ---------------------------------------------------------------- grade

_GRADE_MARKERS = (
    "结果",
    "评分",
    "得分",
    "打分",
    "分数",
    "评级",
    "评定",
    "判定",
    "返回",
    "输出",
    "给出",
    "给",
    "得",
    "grade",
    "score",
    "rating",
    "result",
)
_MARKER_RE = "|".join(sorted((re.escape(m) for m in _GRADE_MARKERS), key=len, reverse=True))
_SEP = r"""[\s"'“”‘’:=*【\[(（「『]*(?:应该是|应当为|应为|为|是)?[\s"'“”‘’:=*【\[(（「『]*"""
_CN_GRADE = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2}
_UNITS = "年月日天条款项号元万千百个岁次人名件%"
_NOT_QUANTITY = rf"(?!\s*[{_UNITS}])(?!\.\d)(?!\d)"
_ALT = r"\s*(?:或者|或|or|到|至|-|~|～|、|/)\s*"
_MARKED_DIGITS = re.compile(
    rf"(?:{_MARKER_RE}){_SEP}(?<!\d)([0-2](?:\.0+)?{_NOT_QUANTITY}(?:{_ALT}[0-2](?:\.0+)?{_NOT_QUANTITY})*)",
    re.IGNORECASE,
)
_MARKED_CN = re.compile(rf"(?:{_MARKER_RE}){_SEP}([零〇一二两])(?=分|\s*$|\s*[,.;!?，。；！？)）】\]])", re.IGNORECASE)
_LONE = re.compile(r"(?<![\d.])([0-2])(?:\.0+)?(?!\d)(?!\.\d)")
_RANGE_AROUND = re.compile(r"[-~～到至]")
_BAD_PREFIXES = ("第", "满分", "总分", "最高", "最低", "共")


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _lone_grades(text: str) -> set[int]:
    found: set[int] = set()
    for m in _LONE.finditer(text):
        start, end = m.start(), m.end()
        before = text[max(0, start - 4) : start].rstrip(" 为是:")
        after = text[end : end + 64].lstrip()  # windows, not the whole rest: linear over many digits
        if any(before.endswith(p) for p in _BAD_PREFIXES):
            continue
        if after[:1] and after[0] in _UNITS:
            continue
        # part of a range like 0-2 / 0到2 / 1~2
        prev = text[max(0, start - 64) : start].rstrip()
        if prev and _RANGE_AROUND.match(prev[-1]) and len(prev) >= 2 and prev[-2].isdigit():
            continue
        if after[:1] and _RANGE_AROUND.match(after[0]) and after[1:].lstrip()[:1].isdigit():
            continue
        found.add(int(m.group(1)))
    return found


def parse_grade(text: str | None) -> int | None:
    """Read one grade 0/1/2 from judge text; None when no grade or several different grades are named."""
    if not text or not text.strip():
        return None
    t = _normalize(text[:MAX_REPLY_CHARS])
    marked: set[int] = set()
    for m in _MARKED_DIGITS.finditer(t):
        marked.update(int(d) for d in re.findall(r"(?<![.\d])[0-2]", m.group(1)))
    for m in _MARKED_CN.finditer(t):
        marked.add(_CN_GRADE[m.group(1)])
    candidates = marked or _lone_grades(t)
    return candidates.pop() if len(candidates) == 1 else None


# ---------------------------------------------------------------- error in months

_JSON_ERROR = re.compile(r'"(?:error_months|error|误差|误差月数)"\s*:\s*"?(\d{1,4})(?![\d.])')
_ZERO = re.compile(
    r"(?:没有|无|不存在|零)(?:任何)?(?:误差|差距|差异|偏差)|(?<![不非])完全(?:一致|相同|吻合)"
    r"|\bno error\b|\bexact(?:ly)? match",
    re.IGNORECASE,
)
_ERROR_MARKER = re.compile(r"误差|相差|差距|差值|偏差|差了|\berror\b|\bdifference\b|\boff by\b", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[，。；;!?！？\n]|,(?!\d)")
_EN_HALF = re.compile(r"\bhalf (?:an? )?year\b", re.IGNORECASE)
_BARE_NUMBER = re.compile(r"^[\s:=为是约大概了有\"']*(\d{1,4}|[零〇一二两三四五六七八九十百]{1,8})[\s个月。.!！]*$")


def _bare_months(text: str) -> int | None:
    m = _BARE_NUMBER.match(text)
    if not m:
        return None
    token = m.group(1)
    return int(token) if token.isdigit() else cn_to_int(token)


def _read_months(clause: str) -> int | None:
    """A duration in a clause: Chinese duration, English duration, or a bare number of months."""
    value = parse_duration_months(clause)
    if value is not None:
        return value
    if _EN_HALF.search(clause):
        return 6
    return _bare_months(clause)


def parse_error_months(text: str | None) -> int | None:
    """Read the prison-term error in months from judge text; None when unreadable or ambiguous."""
    if not text or not text.strip():
        return None
    t = _normalize(text[:MAX_REPLY_CHARS])
    m = _JSON_ERROR.search(t)
    if m:
        return int(m.group(1))
    if t.lstrip().startswith("{"):
        try:
            data = json.loads(t)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            for key in ("error_months", "error", "误差"):
                if isinstance(data.get(key), int) and not isinstance(data.get(key), bool) and data[key] >= 0:
                    return int(data[key])
    found: set[int] = set()
    if _ZERO.search(t):
        found.add(0)
    for marker in _ERROR_MARKER.finditer(t):
        rest = t[marker.end() :]
        clause = _CLAUSE_END.split(rest[:64], maxsplit=1)[0]  # a duration fits in 64 characters
        value = _read_months(clause)
        if value is not None:
            found.add(value)
    if found:
        return found.pop() if len(found) == 1 else None
    durations = find_durations(t)
    if len(durations) == 1:
        return durations[0][2]
    if not durations:
        return _bare_months(t) if not _EN_HALF.search(t) else 6
    return None


def is_declined(kind: str, text: str | None) -> bool:
    """Whether a reply without a value is the judge's deliberate "cannot tell" (term prompt), not a broken reply."""
    return kind == "term_error" and bool(text) and TERM_UNDECIDABLE in _normalize(text[:MAX_REPLY_CHARS])
