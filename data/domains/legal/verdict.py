"""Full verdicts (判决结果): read charges, principal penalty and fine from text; build the canonical sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import cn2an

from data.domains.legal.charges import normalize_charge, parse_charges
from data.domains.legal.terms import Term, format_term, parse_term
from judge.cn_numerals import CN_NUMBER_PATTERN, cn_to_number, to_halfwidth

__all__ = ["VerdictParts", "build_verdict", "format_yuan", "parse_fine", "parse_verdict", "verdict_body"]

MAX_TEXT_CHARS = 10_000  # a verdict is far shorter; readers take bounded time on any input

_WS = re.compile(r"\s+")
_VERDICT_START = re.compile(r"判决如下|裁定如下")
_FINAL_MARKER = re.compile(r"决定执行|合并执行")
_FINE = re.compile(
    rf"罚金(?:人民币|RMB|¥|￥)?[:为是计共]?(?P<amount>\d[\d,]*(?:\.\d+)?|{CN_NUMBER_PATTERN})(?P<unit>[万千百])?"
)


@lru_cache(maxsize=16384)
def parse_fine(text: str) -> int | None:
    """Fine in yuan: "罚金人民币五千元"→5000, "罚金2万元"→20000, "并处罚金人民币1,000元"→1000; no fine → None."""
    norm = _WS.sub("", to_halfwidth((text if isinstance(text, str) else "")[:MAX_TEXT_CHARS]))
    verdict = _VERDICT_START.search(norm)
    if verdict:
        norm = norm[verdict.end() :]
    matches = list(_FINE.finditer(norm))
    if not matches:
        return None
    marker = _FINAL_MARKER.search(norm)
    chosen = next((m for m in matches if marker and m.start() >= marker.end()), matches[0])
    value = cn_to_number(chosen.group("amount") + (chosen.group("unit") or ""))
    return None if value is None else int(round(value))


@dataclass
class VerdictParts:
    """What a verdict decides for one defendant: charges (normalized, sorted), principal penalty, fine (yuan)."""

    charges: list[str]
    term: Term
    fine: int | None


def verdict_body(text: str) -> str:
    """The part of a verdict text that decides (after 判决如下 when present), capped at MAX_TEXT_CHARS."""
    norm = (text if isinstance(text, str) else "")[:MAX_TEXT_CHARS]
    verdict = _VERDICT_START.search(norm)
    return norm[verdict.end() :] if verdict else norm


def parse_verdict(text: str) -> VerdictParts:
    """Charges, term and fine named in a verdict text (only the part after 判决如下 when present)."""
    body = verdict_body(text)
    return VerdictParts(charges=parse_charges(body), term=parse_term(body), fine=parse_fine(body))


def format_yuan(amount: int) -> str:
    """Yuan in Chinese numerals as verdicts write them: 5000 → 五千元, 15000 → 一万五千元."""
    return f"{cn2an.an2cn(amount)}元"


def build_verdict(defendant: str, charges: list[str], term: Term, fine: int | None) -> str:
    """Canonical sentence: "被告人张某犯盗窃罪，判处有期徒刑一年六个月，并处罚金人民币五千元。" (fine 0 → no fine)."""
    names = list(dict.fromkeys(n for n in map(normalize_charge, charges) if n))
    if not names:
        raise ValueError(f"build_verdict needs at least one charge, got {charges!r}")
    fine = fine or 0
    if isinstance(fine, bool) or not isinstance(fine, int) or fine < 0:
        raise ValueError(f"build_verdict: fine must be an int >= 0 (yuan), got {fine!r}")
    who = (defendant or "").strip()
    who = who if who.startswith("被告人") else f"被告人{who}"
    parts = [f"{who}犯{'、'.join(names)}"]
    if term.kind == "none":
        parts.append(f"判处罚金人民币{format_yuan(fine)}" if fine else format_term(term))
    else:
        parts.append(f"判处{format_term(term)}")
        if fine:
            parts.append(f"并处罚金人民币{format_yuan(fine)}")
    return "，".join(parts) + "。"
