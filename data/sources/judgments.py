"""Full criminal judgments {"id", "text"} → Case: facts kept, verdict masked, gold labels extracted by rules."""

from __future__ import annotations

import re
from typing import Any

from data.domains.legal.articles import KNOWN_ARTICLES, parse_articles
from data.domains.legal.verdict import parse_verdict
from data.sources.base import Case, SkipRecord, require, show
from data.sources.cail2018 import MAX_FINE

__all__ = [
    "extract_articles",
    "extract_defendants",
    "extract_facts",
    "facts_span",
    "find_verdict",
    "parse_record",
]

_VERDICT_HEAD = re.compile(r"判\s*决\s*如\s*下\s*[:：]?")
# Where the masked part starts: the court's reasoning, a summing-up, or the verdict itself.
_MASK_START = re.compile(r"本院认为|综\s*上\s*所\s*述|判\s*决\s*如\s*下")
# Where the verdict ends: the appeal notice, finality notice, or the signature block.
_VERDICT_END = re.compile(
    r"如不服本判决|如不服本裁定|本判决为终审判决|本判决送达后即发生法律效力"
    r"|(?:^|\n)\s*(?:审\s*判\s*长|审\s*判\s*员|代理审判员|人民陪审员|书\s*记\s*员|法官助理)"
)
_FACTS_START = re.compile(r"经\s*审\s*理\s*查\s*明\s*[，,:：]?")
_HEARING_DONE = re.compile(r"现已审理终结[。.]?|审理终结[。.]?")
# Header paragraphs dropped when no 经审理查明/审理终结 marks where the facts begin.
_HEADER_LINE = re.compile(
    r"^(?:.{2,30}人民法院|刑\s*事\s*(?:附带民事\s*)?判\s*决\s*书|[（(]\d{4}[）)].{0,20}号|公诉机关.*|"
    r"(?:附带民事诉讼)?(?:原告人|被告人|辩护人|诉讼代理人|法定代理人).*)$"
)
# "被告人张某，男，…" / "被告人李某某（曾用名…），…" at the start of a paragraph of the header.
_DEFENDANT_LINE = re.compile(r"(?:^|\n)\s*被告人\s*([^\s，,（(：:。]{1,12}?)\s*[，,（(]")
# "被告人张某犯…罪" inside the verdict.
_DEFENDANT_IN_VERDICT = re.compile(r"被告人\s*([^\s，,（(：:。、]{1,12}?)\s*犯")
# A Criminal Law citation: 《中华人民共和国刑法》 or 《刑法》 followed by its article list (up to the next 《 or 。).
_CRIMINAL_LAW = re.compile(r"《(?:中华人民共和国)?刑法》([^《。]*)")
# Execution notes in the verdict that the model cannot know from the facts (dates of the sentence, payment deadline).
_EXECUTION_NOTE = re.compile(r"[（(]\s*(?:刑期|缓刑考验期|管制期限|拘役期限|罚金)[^（）()]*[）)]")
_TERM_WORDS = re.compile(r"有期徒刑|拘役|管制")
_BLANKS = re.compile(r"[ \t\u3000]+")


def find_verdict(text: str) -> tuple[int, str] | None:
    """(start of 判决如下, verdict text after it up to the appeal notice or signatures), or None when absent."""
    head = _VERDICT_HEAD.search(text)
    if not head:
        return None
    rest = text[head.end() :]
    end = _VERDICT_END.search(rest)
    body = rest[: end.start()] if end else rest
    return head.start(), body.strip()


def clean_verdict(verdict: str) -> str:
    """Verdict text as gold: execution notes (刑期从…起至…止, 罚金缴纳期限) removed, blank lines dropped."""
    without_notes = _EXECUTION_NOTE.sub("", verdict)
    lines = [_BLANKS.sub("", line).strip() for line in without_notes.splitlines()]
    return "\n".join(line for line in lines if line)


def facts_span(text: str) -> tuple[int, int]:
    """(start, end) of the facts: after 经审理查明 (else after 审理终结, else after the header paragraphs) and
    before the first 本院认为/综上所述/判决如下."""
    mask = _MASK_START.search(text)
    end = mask.start() if mask else len(text)
    start = _FACTS_START.search(text, 0, end)
    if start:
        return start.end(), end
    done = list(_HEARING_DONE.finditer(text, 0, end))
    if done:
        return done[-1].end(), end
    pos = 0
    for paragraph in text[:end].splitlines(keepends=True):
        if paragraph.strip() and not _HEADER_LINE.match(paragraph.strip()):
            break
        pos += len(paragraph)
    return pos, end


def extract_facts(text: str) -> str:
    """The facts section (see facts_span), blank lines dropped; "" when there is none."""
    start, end = facts_span(text)
    lines = [_BLANKS.sub(" ", line).strip() for line in text[start:end].splitlines()]
    return "\n".join(line for line in lines if line)


def extract_defendants(header: str, verdict: str) -> list[str]:
    """Distinct defendant names, in order: from the header's 被告人 paragraphs, else from the verdict."""
    names = [m.group(1) for m in _DEFENDANT_LINE.finditer(header)]
    if not names:
        names = [m.group(1) for m in _DEFENDANT_IN_VERDICT.finditer(verdict)]
    return list(dict.fromkeys(names))


def extract_articles(text: str) -> list[int]:
    """Criminal Law articles cited in text (only 《中华人民共和国刑法》/《刑法》 citations), unique and sorted."""
    found: set[int] = set()
    for m in _CRIMINAL_LAW.finditer(text):
        found.update(a for a in parse_articles(m.group(1)) if a in KNOWN_ARTICLES)
    return sorted(found)


def parse_record(obj: Any, origin: str, scan: bool = False) -> Case:
    """One decoded {"id", "text"} object → Case; extraction failures raise SkipRecord with a reason code.

    scan is accepted for the common Parser signature; extraction is the validation, so it changes nothing here.
    """
    if not isinstance(obj, dict):
        raise SkipRecord("not_an_object", f"record must be a JSON object, got {type(obj).__name__}")
    case_id = require(obj, "id", (str, int), "")
    text = require(obj, "text", str, "")
    if not text.strip():
        raise SkipRecord("empty_fact", "field 'text' is empty")
    found = find_verdict(text)
    if found is None:
        raise SkipRecord("no_verdict_section", "no 判决如下 in the text")
    verdict_start, verdict_raw = found
    facts_start, masked_from = facts_span(text)
    header = text[:facts_start]

    defendants = extract_defendants(header, verdict_raw)
    if not defendants:
        raise SkipRecord("no_defendant", "no 被告人 named in the header or the verdict")
    if len(defendants) > 1:
        raise SkipRecord("multiple_defendants", f"{len(defendants)} defendants: {'、'.join(defendants[:5])}")
    fact = extract_facts(text)
    if not fact:
        raise SkipRecord("empty_fact", "nothing left between the header and 本院认为/判决如下")
    verdict = clean_verdict(verdict_raw)
    if not verdict:
        raise SkipRecord("no_verdict_section", "判决如下 is followed by no verdict text")
    parts = parse_verdict(verdict)
    charges = [c for c in parts.charges if c]
    if not charges:
        raise SkipRecord("no_charges", f"no charge found in the verdict {verdict[:60]!r}")
    if parts.term.kind == "none" and _TERM_WORDS.search(verdict):
        raise SkipRecord("unparseable_term", f"a term is named but cannot be read in {verdict[:80]!r}")
    fine = int(parts.fine or 0)
    if fine > MAX_FINE:
        raise SkipRecord("invalid_value", f"fine of {show(fine)} yuan in the verdict is above {MAX_FINE}")
    articles = extract_articles(text[masked_from:verdict_start])
    if not articles:
        raise SkipRecord("no_articles", "no 《中华人民共和国刑法》 article cited before 判决如下")
    return Case(
        case_id=str(case_id),
        fact=fact,
        defendant=defendants[0],
        charges=tuple(sorted(set(charges))),
        articles=tuple(articles),
        term=parts.term,
        fine=fine,
        verdict=verdict,
    )
