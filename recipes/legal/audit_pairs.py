"""Judge-audit pairs: (gold, prediction) pairs built from the data's own gold whose right grade the rules know.

Kinds per task (each pair is checked against rewards.rules.score_rules; one the rules grade otherwise is dropped and
counted under ``rules_disagree:<task>/<kind>``, so every kept pair has a grade the rules are sure of):

- charge: ``exact`` (the gold labels, 2), ``no_zui`` (without the trailing 罪, 2), ``full_label`` (a partial
  selective gold such as 贩卖毒品罪 given as its full CAIL label, 2), ``subset`` (a strict subset, 1), ``superset``
  (gold + another case's label: 1 when most of it is right, i.e. two or more gold labels, else 0), ``disjoint``
  (two labels of other cases, 0).
- article: ``exact`` (第264条, 2), ``cn_numerals`` (第二百六十四条, 2), ``bare`` (264, 2), ``law_title``
  (《刑法》第264条, 2), ``subset`` (1), ``superset`` (as for charges), ``disjoint`` (0).
- term (gold with a month count only; training never asks the judge about life/death/none golds): ``diff_0``,
  ``diff_3``, ``diff_12``, ``diff_36`` (a term that many months away, written in Chinese numerals, in 年/个月 with
  Arabic digits, or in months only; the right judge error is the difference), ``life_vs_fixed`` and
  ``death_vs_fixed`` (无期徒刑 / 死刑 against a fixed gold: the rules score -1; the judge passes when it does not pay
  more than that, i.e. an unreadable error or one of 240 months or more).
- verdict: ``exact`` (the gold sentence, 2), ``term_off`` (charges and fine right, the term 12 months off, 1),
  ``all_wrong`` (other charges, another term and another fine, 0).

Probes (the shared set, recipes/audit/probes.yaml) are added for every task on top of the ``n`` pairs; the
pair and probe types, the probe loader and the sampling are recipes/audit/run.py's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cn2an

from data.domains.legal.charges import canonical_charge, normalize_charge
from data.domains.legal.tasks import INSTRUCTIONS, TASKS, task_of
from data.domains.legal.terms import Term, format_months
from data.domains.legal.verdict import build_verdict
from recipes.audit.run import DEFAULT_PROBES_PATH, AuditPair, Probe, load_probes
from recipes.audit.run import select_pairs as _select_pairs
from rewards.rules import Gold, gold_from, score_rules

__all__ = [
    "DEFAULT_PROBES_PATH",
    "GRADE_SCORE",
    "KINDS",
    "TERM_DIFFS",
    "AuditPair",
    "Probe",
    "build_pairs",
    "load_probes",
    "probe_pairs",
    "select_pairs",
]

TERM_DIFFS: tuple[int, ...] = (0, 3, 12, 36)
GRADE_SCORE: dict[int, float] = {0: -2.0, 1: 1.0, 2: 2.0}  # the reward's mapping of a grade (rewards/legal.py)
KINDS: dict[str, tuple[str, ...]] = {
    "charge": ("exact", "no_zui", "full_label", "subset", "superset", "disjoint"),
    "article": ("exact", "cn_numerals", "bare", "law_title", "subset", "superset", "disjoint"),
    "term": (*(f"diff_{d}" for d in TERM_DIFFS), "life_vs_fixed", "death_vs_fixed"),
    "verdict": ("exact", "term_off", "all_wrong"),
}
_TERM_VARIANTS = ("cn", "arabic", "months")
_FALLBACK_CHARGES = ("放火罪", "重婚罪", "伪证罪")  # wrong labels when the data has too few other charges
_FALLBACK_ARTICLES = (114, 258, 305)


@dataclass
class _Pool:
    """Labels seen in the data (for wrong answers drawn from other cases)."""

    charges: list[str] = field(default_factory=list)
    articles: list[int] = field(default_factory=list)


def _question(task: str) -> str:
    """The first sentence of the task's training instruction."""
    text = INSTRUCTIONS[task]
    return text[: text.index("。") + 1] if "。" in text else text


def _rules_score(pair: AuditPair) -> float:
    return score_rules(pair.task, pair.prediction, pair.gold).score


def _expected_score(pair: AuditPair) -> float:
    """The rules score the construction implies."""
    if pair.expected_grade is not None:
        return GRADE_SCORE[pair.expected_grade]
    if pair.expected_error is not None:
        return -pair.expected_error / 240.0
    return -1.0  # life / death against a fixed gold


def _others(pool: Sequence[Any], exclude: set[Any], k: int, rng: random.Random, fallback: Sequence[Any]) -> list[Any]:
    """k distinct values from pool (else fallback) not in exclude, drawn with rng."""
    candidates = sorted({v for v in pool if v not in exclude}, key=str)
    rng.shuffle(candidates)
    candidates += [v for v in fallback if v not in exclude and v not in candidates]
    # Labels without an inner 、 first: a list of such labels joined by 、 is hard to read for the judge too.
    candidates.sort(key=lambda v: "、" in str(v))
    return candidates[:k]


def _charge_pairs(index: int, gold: Gold, pool: _Pool, rng: random.Random) -> list[AuditPair]:
    labels = [normalize_charge(c) for c in gold.charges]
    own = {canonical_charge(c) for c in labels}
    out = [
        ("exact", "、".join(labels), 2),
        ("no_zui", "、".join(c[:-1] if c.endswith("罪") else c for c in labels), 2),
    ]
    if any(canonical_charge(c) != c for c in labels):
        out.append(("full_label", "、".join(canonical_charge(c) for c in labels), 2))
    if len(labels) >= 2:
        out.append(("subset", "、".join(labels[:-1]), 1))
    wrong = _others(pool.charges, own, 2, rng, _FALLBACK_CHARGES)
    if wrong:
        # rules: partial credit needs more than half of the claimed labels right (n of n+1: n >= 2), else wrong
        out.append(("superset", "、".join([*labels, wrong[0]]), 1 if len(labels) >= 2 else 0))
    if len(wrong) == 2:
        out.append(("disjoint", "、".join(wrong), 0))
    return [AuditPair("charge", kind, index, gold, pred, expected_grade=g) for kind, pred, g in out]


def _article_pairs(index: int, gold: Gold, pool: _Pool, rng: random.Random) -> list[AuditPair]:
    arts = list(gold.articles)
    out = [
        ("exact", "、".join(f"第{a}条" for a in arts), 2),
        ("cn_numerals", "、".join(f"第{cn2an.an2cn(a)}条" for a in arts), 2),
        ("bare", "、".join(str(a) for a in arts), 2),
        ("law_title", "、".join(f"《刑法》第{a}条" for a in arts), 2),
    ]
    if len(arts) >= 2:
        out.append(("subset", "、".join(f"第{a}条" for a in arts[:-1]), 1))
    wrong = _others(pool.articles, set(arts), 2, rng, _FALLBACK_ARTICLES)
    if wrong:
        out.append(("superset", "、".join(f"第{a}条" for a in [*arts, wrong[0]]), 1 if len(arts) >= 2 else 0))
    if len(wrong) == 2:
        out.append(("disjoint", "、".join(f"第{a}条" for a in wrong), 0))
    return [AuditPair("article", kind, index, gold, pred, expected_grade=g) for kind, pred, g in out]


def _term_text(penalty: str, months: int, variant: str) -> str:
    """A fixed term in one notation: 有期徒刑一年六个月 / 有期徒刑1年6个月 / 有期徒刑18个月."""
    if variant == "cn":
        return penalty + format_months(months)
    if variant == "months":
        return f"{penalty}{months}个月"
    years, rest = divmod(months, 12)
    return penalty + (f"{years}年" if years else "") + (f"{rest}个月" if rest or not years else "")


def _term_pairs(index: int, gold: Gold, rng: random.Random) -> list[AuditPair]:
    months = gold.term.months
    penalty = gold.term.penalty or "有期徒刑"
    out = []
    for d in TERM_DIFFS:
        variant = rng.choice(_TERM_VARIANTS)
        pred = months - d if d and months - d >= 1 and rng.random() < 0.5 else months + d
        text = _term_text("有期徒刑" if pred > 6 and penalty == "拘役" else penalty, pred, variant)
        out.append(AuditPair("term", f"diff_{d}", index, gold, text, expected_error=d, variant=variant))
    out.append(AuditPair("term", "life_vs_fixed", index, gold, "无期徒刑"))
    out.append(AuditPair("term", "death_vs_fixed", index, gold, "死刑"))
    return out


def _defendant(text: str) -> str:
    """The defendant's name in a canonical verdict sentence ("被告人张某犯…" → 张某), else ""."""
    start = text.find("被告人")
    end = text.find("犯", start + 3) if start >= 0 else -1
    return text[start + 3 : end] if start >= 0 and 0 < end - start - 3 <= 6 else ""


def _verdict_pairs(index: int, gold: Gold, pool: _Pool, rng: random.Random) -> list[AuditPair]:
    name = _defendant(gold.text)
    charges = [normalize_charge(c) for c in gold.charges]
    fixed = gold.term.kind == "fixed" and gold.term.months > 0
    off = Term("fixed", gold.term.months + 12 if fixed else 24)
    other = Term("fixed", gold.term.months + 36 if fixed else 36)
    wrong = _others(pool.charges, {canonical_charge(c) for c in charges}, 1, rng, _FALLBACK_CHARGES)
    out = [("exact", gold.text, 2), ("term_off", build_verdict(name, charges, off, gold.fine), 1)]
    if wrong:
        out.append(("all_wrong", build_verdict(name, wrong, other, gold.fine + 10000), 0))
    return [AuditPair("verdict", kind, index, gold, pred, expected_grade=g) for kind, pred, g in out]


def build_pairs(rows: Sequence[Mapping[str, Any]], seed: int = 0) -> tuple[list[AuditPair], dict[str, int]]:
    """Every candidate pair of every row (verified by the rules) and the skip counts by reason.

    A row is {data_source, reward_model: {ground_truth}, extra_info}; a gold the rules cannot read is skipped as
    ``bad_gold``, a term gold without a month count as ``term_gold_without_months``.
    """
    rng = random.Random(seed)
    golds: list[tuple[str, int, Gold]] = []
    skipped: dict[str, int] = {}
    pool = _Pool()
    for row in rows:
        task = task_of(str(row["data_source"]))
        info = dict(row.get("extra_info") or {})
        try:
            gold = gold_from(task, (row.get("reward_model") or {}).get("ground_truth"), info)
        except ValueError:
            skipped["bad_gold"] = skipped.get("bad_gold", 0) + 1
            continue
        golds.append((task, int(info.get("index", -1)), gold))
        pool.charges.extend(canonical_charge(c) for c in gold.charges)
        pool.articles.extend(gold.articles)
    pairs: list[AuditPair] = []
    for task, index, gold in golds:
        if task == "charge":
            built = _charge_pairs(index, gold, pool, rng)
        elif task == "article":
            built = _article_pairs(index, gold, pool, rng)
        elif task == "term":
            if gold.term.kind != "fixed" or gold.term.months <= 0:
                skipped["term_gold_without_months"] = skipped.get("term_gold_without_months", 0) + 1
                continue
            built = _term_pairs(index, gold, rng)
        else:
            built = _verdict_pairs(index, gold, pool, rng)
        for pair in built:
            if abs(_rules_score(pair) - _expected_score(pair)) > 1e-9:
                reason = f"rules_disagree:{task}/{pair.kind}"
                skipped[reason] = skipped.get(reason, 0) + 1
            else:
                pairs.append(pair)
    return pairs, dict(sorted(skipped.items()))


def select_pairs(pairs: Sequence[AuditPair], n: int, seed: int = 0) -> list[AuditPair]:
    """Up to n pairs, spread evenly over (task, kind): round robin over the shuffled buckets, in TASKS order."""
    return _select_pairs(pairs, n, [(t, k) for t in TASKS for k in KINDS[t]], seed=seed)


def probe_pairs(rows: Sequence[Mapping[str, Any]], probes: Sequence[Probe]) -> list[AuditPair]:
    """Every probe for every task present in the rows, each against one gold of that task (in turn)."""
    golds: dict[str, list[tuple[int, Gold]]] = {}
    for row in rows:
        task = task_of(str(row["data_source"]))
        info = dict(row.get("extra_info") or {})
        try:
            gold = gold_from(task, (row.get("reward_model") or {}).get("ground_truth"), info)
        except ValueError:
            continue
        if task == "term" and (gold.term.kind != "fixed" or gold.term.months <= 0):
            continue  # training never asks the judge about such a gold
        golds.setdefault(task, []).append((int(info.get("index", -1)), gold))
    out = []
    for task in TASKS:
        for i, probe in enumerate(probes):
            if task not in golds:
                continue
            index, gold = golds[task][i % len(golds[task])]
            text = probe.text.replace("{question}", _question(task))
            out.append(AuditPair(task, probe.name, index, gold, text, probe=True))
    return out
