"""Human-readable evaluation report (report.md + PNG plots) and the side-by-side comparison of several reports.

Display conventions and the compare framework: recipes/evaluation/report.py (shared with every recipe).
- Term MAE counts an unreadable answer on a month-count gold as 0 months predicted (error = gold months); the
  table shows how many responses that applies to (``mae_unparseable``) and how many predicted life/death for a
  month-count gold (left out of the MAE). term_error_hist.png shows predicted − gold for readable month answers
  in bins of one month when all errors are within ±24 months, else in bands 0, 1–2, 3–5, 6–11, 12–23, 24–59, 60+.
- charge_confusion.png counts what accuracy counts: its diagonal holds exactly right answers only; a wrong answer
  counts under the charges it got wrong (see charge_confusion). It labels charges with their Chinese names when
  matplotlib finds a CJK font (Noto Sans CJK, Source Han Sans, WenQuanYi, Droid Sans Fallback, …); otherwise it uses
  codes C1… and draws a code → charge legend beside the heat map (English glosses of common charges; report.md
  lists the Chinese names).
- The verdict score row is labelled by its grader: "mean judge score" when the judge graded, "mean task score
  (rules)" when no judge was called (rules mode); so is the verdict panel of compare_verdict.png.
- The official CAIL2018 row says "(comparable)" only when the label lists are the contest's full ones.
- compare: compare.md tables every metric (ROWS' labels); the terminal table and compare_<task>.png show the
  HEADLINE metrics under short readable labels, the charge/article CAIL panel being cail_score_official (the score
  README says to publish); a panel no run has a value for is not drawn.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.domains.legal.tasks import data_source
from recipes.evaluation.report import (  # noqa: F401  (bar_labels, fmt, load_metrics: re-exported)
    ItemCoverage,
    Panel,
    bar_labels,
    fmt,
    input_problems,
    load_metrics,
    plot_bars,
    text_table,
    write_compare,
)
from recipes.evaluation.report import cjk_font as _any_cjk_font
from recipes.evaluation.report import plt as _plt

logger = logging.getLogger(__name__)

TASKS = ("charge", "article", "term", "verdict")
OFFICIAL_LABEL = "CAIL2018 score, official judger over the label lists"
# cail_score_official's row in report.md, by what the lists are (overall.cail_labels.full_lists)
OFFICIAL_LABELS = {
    True: OFFICIAL_LABEL + " (comparable with published results)",
    False: OFFICIAL_LABEL + " (NOT comparable: not the full contest lists)",
}
TASK_TITLES = {"charge": "罪名 charge", "article": "法条 article", "term": "刑期 term", "verdict": "判决 verdict"}
# (key, label, kind) per task: the write-up's metrics first, then the field's scores, then counts.
# kind: "rate" → shown as %, "x100" → already ×100, "num" → plain number, "int" → count.
ROWS: dict[str, list[tuple[str, str, str]]] = {
    "charge": [
        ("accuracy", "accuracy (set exactly equal)", "rate"),
        ("set_f1", "per-item set F1 (LawBench 3-3 style)", "rate"),
        ("cail_score", "CAIL2018 score ((micro+macro F1)/2 ×100)", "x100"),
        ("cail_micro_f1", "CAIL micro-F1", "rate"),
        ("cail_macro_f1", "CAIL macro-F1 (labels seen on either side)", "rate"),
        ("cail_score_vocab", "CAIL2018 score, official judger over the label vocabulary", "x100"),
        ("cail_score_official", OFFICIAL_LABEL, "x100"),
        ("cail_official_labels", "labels in the lists (label_sets.json)", "int"),
        ("cail_official_pred_outside", "predicted labels outside the lists (dropped, as the judger does)", "count"),
    ],
    "article": [
        ("accuracy", "accuracy (set exactly equal)", "rate"),
        ("set_f1", "per-item set F1 (LawBench 3-1 style)", "rate"),
        ("cail_score", "CAIL2018 score ((micro+macro F1)/2 ×100)", "x100"),
        ("cail_micro_f1", "CAIL micro-F1", "rate"),
        ("cail_macro_f1", "CAIL macro-F1 (labels seen on either side)", "rate"),
        ("cail_score_vocab", "CAIL2018 score, official judger over the label vocabulary", "x100"),
        ("cail_score_official", OFFICIAL_LABEL, "x100"),
        ("cail_official_labels", "labels in the lists (label_sets.json)", "int"),
        ("cail_official_pred_outside", "predicted labels outside the lists (dropped, as the judger does)", "count"),
    ],
    "term": [
        ("mae_months", "mean absolute error (months; unreadable answer = 0 months)", "num"),
        ("mae_items", "items in the MAE (month-count golds)", "int"),
        ("mae_unparseable", "of which: unreadable answers, counted as 0 months (responses)", "int"),
        ("mae_life_death_predicted", "life/death predicted for a month-count gold, not in MAE (responses)", "int"),
        ("accuracy", "exact term", "rate"),
        ("kind_accuracy", "life/death kind accuracy", "rate"),
        ("cail_term_score", "CAIL2018 log-distance score (×100)", "x100"),
        ("lawbench_term_score", "LawBench 3-4/3-5 score (×100)", "x100"),
    ],
    "verdict": [
        ("judge_score_mean", "mean judge score (−2 … +2)", "num"),
        ("accuracy", "fully correct (acc)", "rate"),
    ],
}
COMMON_ROWS: list[tuple[str, str, str]] = [
    ("judge_rules_agreement", "judge–rules agreement", "rate"),
    ("judge_rules_pairs", "responses with both grades", "int"),
    ("format_ok_rate", "format-ok rate", "rate"),
    ("mean_reward", "mean reward", "num"),
    ("n_items", "items", "int"),
    ("n_responses", "responses", "int"),
    ("unparseable", "unparseable answers", "int"),
    ("judge_calls", "judge calls", "int"),
    ("judge_failures", "judge failures", "int"),
]
# Headline metrics per task, (key, short label, kind): the terminal table and the compare bar charts (all "higher is
# better" except mae_months). The CAIL score shown is cail_score_official, the one README says to publish.
HEADLINE: dict[str, list[tuple[str, str, str]]] = {
    "charge": [
        ("accuracy", "accuracy (exact set)", "rate"),
        ("set_f1", "set F1 per item", "rate"),
        ("cail_score_official", "CAIL2018 official score (×100)", "x100"),
    ],
    "article": [
        ("accuracy", "accuracy (exact set)", "rate"),
        ("set_f1", "set F1 per item", "rate"),
        ("cail_score_official", "CAIL2018 official score (×100)", "x100"),
    ],
    "term": [
        ("mae_months", "MAE, months (lower is better)", "num"),
        ("cail_term_score", "CAIL2018 term score (×100)", "x100"),
        ("lawbench_term_score", "LawBench term score (×100)", "x100"),
        ("kind_accuracy", "life/death kind accuracy", "rate"),
    ],
    "verdict": [
        ("judge_score_mean", "mean judge score (−2 … +2)", "num"),  # labelled by its grader: verdict_panel_title
        ("judge_rules_agreement", "judge–rules agreement", "rate"),
    ],
}
# English task names for plot titles (TASK_TITLES' Chinese needs a CJK font)
PLOT_TITLES = {"charge": "charge prediction", "article": "article prediction", "term": "prison term",
               "verdict": "full verdict"}  # fmt: skip
VERDICT_SCORE_LABELS = {
    "judge": "mean judge score (−2 … +2)",
    "rules": "mean task score (rules, −2 … +2)",
    "mixed": "mean task score (judge where called, else rules; −2 … +2)",
}
COMPARE_VERDICT_LABEL = "mean verdict score (−2 … +2; grader in the row below)"
# The verdict compare panel when the runs were graded differently (one grader: VERDICT_SCORE_LABELS' label).
VERDICT_PANEL_SEVERAL = "mean verdict score (−2 … +2; grader under each bar)"
# English glosses of frequent CAIL2018 charges, for charge_confusion.png when no CJK font can draw the names.
CHARGE_GLOSSES = {
    "盗窃罪": "theft",
    "诈骗罪": "fraud",
    "故意伤害罪": "intentional injury",
    "抢劫罪": "robbery",
    "抢夺罪": "snatching",
    "走私、贩卖、运输、制造毒品罪": "drug smuggling/trafficking/transport/manufacture",
    "非法持有毒品罪": "illegal possession of drugs",
    "容留他人吸毒罪": "harbouring drug use",
    "寻衅滋事罪": "picking quarrels, provoking trouble",
    "危险驾驶罪": "dangerous driving",
    "交通肇事罪": "traffic accident crime",
    "故意杀人罪": "intentional homicide",
    "过失致人死亡罪": "negligent homicide",
    "强奸罪": "rape",
    "受贿罪": "accepting bribes",
    "行贿罪": "bribery",
    "贪污罪": "embezzlement (public)",
    "职务侵占罪": "embezzlement (employee)",
    "挪用资金罪": "misappropriating funds",
    "挪用公款罪": "misappropriating public funds",
    "开设赌场罪": "running a casino",
    "赌博罪": "gambling",
    "敲诈勒索罪": "extortion",
    "妨害公务罪": "obstructing official duty",
    "非法拘禁罪": "unlawful detention",
    "合同诈骗罪": "contract fraud",
    "信用卡诈骗罪": "credit card fraud",
    "集资诈骗罪": "fund-raising fraud",
    "故意毁坏财物罪": "intentional destruction of property",
    "聚众斗殴罪": "affray",
    "放火罪": "arson",
    "失火罪": "negligent fire",
    "滥用职权罪": "abuse of power",
    "玩忽职守罪": "dereliction of duty",
    "非法采矿罪": "illegal mining",
    "非法经营罪": "illegal business operation",
    "非法吸收公众存款罪": "illegal public deposit-taking",
    "拒不支付劳动报酬罪": "refusing to pay wages",
    "拒不执行判决、裁定罪": "refusing to execute a judgment",
    "重婚罪": "bigamy",
    "猥亵儿童罪": "molesting a child",
    "污染环境罪": "environmental pollution",
    "非法占用农用地罪": "illegal occupation of farmland",
    "滥伐林木罪": "excessive logging",
    "盗伐林木罪": "illegal logging",
    "非法狩猎罪": "illegal hunting",
    "非法捕捞水产品罪": "illegal fishing",
    "绑架罪": "kidnapping",
    "非法侵入住宅罪": "unlawful intrusion into a home",
    "伪证罪": "perjury",
    "窝藏、包庇罪": "harbouring, shielding",
    "生产、销售假药罪": "producing/selling fake drugs",
    "掩饰、隐瞒犯罪所得、犯罪所得收益罪": "concealing criminal proceeds",
    "非法持有、私藏枪支、弹药罪": "illegal possession of firearms/ammunition",
    "组织、强迫、引诱、容留、介绍卖淫罪": "organizing/forcing/luring/harbouring/procuring prostitution",
    "引诱、容留、介绍卖淫罪": "luring/harbouring/procuring prostitution",
    "强制猥亵、侮辱罪": "forcible indecency",
    "虚开增值税专用发票、用于骗取出口退税、抵扣税款发票罪": "false VAT invoices",
    "伪造、变造、买卖国家机关公文、证件、印章罪": "forging official documents/seals",
    "伪造公司、企业、事业单位、人民团体印章罪": "forging company seals",
    "招摇撞骗罪": "impersonation fraud",
    "侵占罪": "conversion",
    "破坏生产经营罪": "sabotaging production",
    "非法转让、倒卖土地使用权罪": "land-use right resale",
    "诬告陷害罪": "false accusation",
    "非法买卖制毒物品罪": "trading drug precursors",
    "妨害作证罪": "obstructing testimony",
    "脱逃罪": "escape",
    "传播性病罪": "spreading venereal disease",
    "侵犯著作权罪": "copyright infringement",
    "销售假冒注册商标的商品罪": "selling counterfeit trademarked goods",
    "假冒注册商标罪": "counterfeiting a trademark",
    "非法猎捕、杀害珍贵、濒危野生动物罪": "killing rare/endangered wildlife",
    "伪造、变造居民身份证罪": "forging ID cards",
    "伪造、变造、买卖武装部队公文、证件、印章罪": "forging military documents",
    "非法收购、运输、出售珍贵、濒危野生动物、珍贵、濒危野生动物制品罪": "trading rare/endangered wildlife",
    "帮助信息网络犯罪活动罪": "aiding cybercrime",
    "侵犯公民个人信息罪": "infringing personal information",
    "抢劫、盗窃、抢夺枪支、弹药、爆炸物、危险物质罪": "robbing/stealing firearms or explosives",
    "非法制造、买卖、运输、邮寄、储存枪支、弹药、爆炸物罪": "illegal firearms/explosives trade",
    "组织卖淫罪": "organizing prostitution",
}


def _cjk_font() -> str | None:
    """An installed font that draws charge names, else None."""
    return _any_cjk_font("盗窃罪诈骗")


def verdict_score_label(block: dict[str, Any]) -> str:
    """Label of the verdict judge_score_mean row: who graded (judge, rules, or a mix)."""
    return VERDICT_SCORE_LABELS.get(block.get("graded_by") or "", VERDICT_SCORE_LABELS["judge"])


def task_table(task: str, block: dict[str, Any], full_lists: bool = False) -> list[str]:
    """Markdown table (metric, value) for one task (full_lists: the official score's lists are the contest's)."""
    lines = ["| metric | value |", "| --- | --- |"]
    for key, label, kind in ROWS[task] + COMMON_ROWS:
        if key in block:
            if task == "verdict" and key == "judge_score_mean":
                label = verdict_score_label(block)
            if key == "cail_score_official":
                label = OFFICIAL_LABELS[full_lists]
            lines.append(f"| {label} | {fmt(block[key], kind)} |")
    return lines


def plot_score_distribution(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Histogram of per-response reward per task (2×2 grid)."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    for ax, task in zip(axes.flat, TASKS, strict=True):
        scores = [r["score"] for r in records if r["task"] == task]
        if scores:
            ax.hist(scores, bins=20, color="#4c72b0")
        ax.set_title(f"{task} (n={len(scores)})")
        ax.set_xlabel("reward")
        ax.set_ylabel("responses")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# |error| bands (months) of the term error histogram when errors exceed ±INTEGER_BIN_LIMIT: [lo, hi) each.
ERROR_BANDS: tuple[tuple[int, float], ...] = ((1, 3), (3, 6), (6, 12), (12, 24), (24, 60), (60, math.inf))
INTEGER_BIN_LIMIT = 24


def term_error_bins(errors: Sequence[float]) -> tuple[list[str], list[int]]:
    """(labels, counts) of signed month errors: one bin per month within ±24, else bands 0, ±1–2, ±3–5, … ±60+.

    Exact hits always have their own bin "0", so a 20-month miss never shares a bar with them.
    """
    ints = [int(round(e)) for e in errors]
    if not ints:
        return [], []
    if max(abs(e) for e in ints) <= INTEGER_BIN_LIMIT:
        lo, hi = min(min(ints), -1), max(max(ints), 1)
        labels = [f"{k:+d}" if k else "0" for k in range(lo, hi + 1)]
        counts = Counter(ints)
        return labels, [counts.get(k, 0) for k in range(lo, hi + 1)]

    def band_label(lo: int, hi: float, sign: str) -> str:
        if math.isinf(hi):
            return f"≤−{lo}" if sign == "−" else f"≥+{lo}"
        if sign == "−":
            return f"−{int(hi) - 1}…−{lo}"
        return f"+{lo}…+{int(hi) - 1}"

    bands = [(-hi, -lo, band_label(lo, hi, "−")) for lo, hi in reversed(ERROR_BANDS)]
    bands += [(0, 0, "0")] + [(lo, hi, band_label(lo, hi, "+")) for lo, hi in ERROR_BANDS]
    counts = [0] * len(bands)
    for e in ints:
        for i, (lo, hi, _) in enumerate(bands):
            if (e == 0 and lo == hi == 0) or (e > 0 and lo <= e < hi) or (e < 0 and lo < e <= hi):
                counts[i] += 1
                break
    return [label for _, _, label in bands], counts


def plot_term_errors(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Bar chart of signed term error (predicted − gold months) for readable month answers on month-count golds."""
    plt = _plt()
    term = [r for r in records if r["task"] == "term"]
    errors = [r["signed_err"] for r in term if r.get("signed_err") is not None]
    unreadable = sum(bool(r.get("mae_unparseable")) for r in term)
    life_death = sum(bool(r.get("mae_life_death_pred")) for r in term)
    labels, counts = term_error_bins(errors)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.32 * len(labels) + 1.5), 4.2))
    if labels:
        colors = ["#55a868" if label == "0" else "#dd8452" for label in labels]
        bars = ax.bar(range(len(labels)), counts, color=colors, width=0.85)
        banded = "0" in labels and "+1" not in labels
        ax.set_xticks(range(len(labels)), labels, rotation=45 if banded or len(labels) > 13 else 0, fontsize=8)
        ax.bar_label(bars, labels=[str(c) if c else "" for c in counts], fontsize=7)
    else:
        ax.text(0.5, 0.5, "no readable month answers", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(
        f"term error, predicted − gold months (n={len(errors)}; not shown: {unreadable} unreadable, "
        f"{life_death} life/death)",
        fontsize=9,
    )
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("months (− = predicted too short, + = too long)")
    ax.set_ylabel("responses")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


OTHER, INCOMPLETE, NONE = "其他", "不全", "无"
"""charge_confusion's extra columns: a wrong charge outside the rows; gold charges only, not all; nothing."""


def charge_confusion(
    records: Sequence[dict[str, Any]], top_k: int = 10
) -> tuple[list[str], list[str], list[list[float]]]:
    """Confusion counts for the top_k most frequent gold charges: rows gold, columns predicted (+ 其他, 不全, 无).

    It counts what accuracy (and the reward's +2) counts: only an answer whose charge set equals the gold set is
    right. Each response weighs 1/k (k responses for its item); for each gold charge g of its item, row g gets:
    - an exactly right answer: (g, g), the diagonal;
    - an answer naming a wrong charge (not in the gold), even beside g: its weight split over the wrong charges
      (a top-k column, else 其他 "other"); so 聚众斗殴罪、寻衅滋事罪 for gold 寻衅滋事罪 counts under 聚众斗殴罪;
    - an answer naming only gold charges but not all of them: 不全 ("incomplete");
    - an answer naming nothing: 无 ("none").
    """
    recs = [r for r in records if r["task"] == "charge"]
    sizes = Counter((r["data_source"], r["index"]) for r in recs)
    freq = Counter(g for r in recs for g in r.get("gold_labels") or [])
    rows = [g for g, _ in freq.most_common(top_k)]
    cols = [*rows, OTHER, INCOMPLETE, NONE]
    pos = {c: i for i, c in enumerate(rows)}
    matrix = [[0.0] * len(cols) for _ in rows]
    for r in recs:
        w = 1.0 / sizes[(r["data_source"], r["index"])]
        gold, pred = set(r.get("gold_labels") or []), set(r.get("pred_labels") or [])
        wrong = sorted(pred - gold)
        for g in gold & pos.keys():
            row = matrix[pos[g]]
            if pred == gold:
                row[pos[g]] += w
            elif wrong:
                for p in wrong:
                    row[pos.get(p, len(rows))] += w / len(wrong)
            else:
                row[len(rows) + (1 if pred else 2)] += w
    return rows, cols, matrix


def charge_legend(rows: Sequence[str]) -> list[str]:
    """Legend lines "C1  theft" for charges drawn without a CJK font (gloss, else a pointer to report.md)."""
    return [f"C{i + 1}  {CHARGE_GLOSSES.get(name, '(name in report.md)')}" for i, name in enumerate(rows)]


def plot_charge_confusion(
    records: Sequence[dict[str, Any]], path: Path, top_k: int = 10, font: str | None | bool = True
) -> tuple[Path, list[str]]:
    """Heat map of charge_confusion; returns the path and the charge names behind the C1… codes.

    font=True looks for a CJK font (real names on the axes); None/False forces codes plus the in-figure legend.
    """
    plt = _plt()
    rows, cols, matrix = charge_confusion(records, top_k)
    font = _cjk_font() if font is True else font or None
    legend: list[str] = []
    if font:
        ylabels, xlabels = list(rows), [*rows, f"{OTHER} other", f"{INCOMPLETE} incomplete", f"{NONE} none"]
    else:  # no CJK font: codes on the axes, a code → charge legend beside the heat map
        ylabels = [f"C{i + 1}" for i in range(len(rows))]
        xlabels = [*ylabels, "other", "incomplete", "none"]
        legend = charge_legend(rows)
    label_width = max((len(s) for s in ylabels), default=2) * (0.16 if font else 0.08)
    legend_width = 0.068 * max((len(s) for s in legend), default=0)
    heat_width = 1.6 + label_width + 0.62 * len(cols)
    height = 1.6 + 0.5 * max(1, len(rows)) + label_width * 0.6
    with plt.rc_context({"font.sans-serif": [font, *plt.rcParams["font.sans-serif"]]} if font else {}):
        if legend:  # heat map | legend panel (its own axes, so the legend never overlaps the colour bar)
            fig, (ax, lax) = plt.subplots(
                1,
                2,
                figsize=(heat_width + legend_width, height),
                gridspec_kw={"width_ratios": (heat_width, legend_width)},
            )
            lax.axis("off")
            lax.text(
                0.0, 0.5, "\n".join(["code  charge (gold rows)", *legend]), family="monospace", fontsize=7.5,
                va="center", ha="left", transform=lax.transAxes,
                bbox={"boxstyle": "round", "facecolor": "#f7f7f7", "edgecolor": "#999999"},
            )  # fmt: skip
        else:
            fig, ax = plt.subplots(figsize=(heat_width, height))
        if rows:
            image = ax.imshow(matrix, cmap="Blues", aspect="auto")
            fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="responses (weight 1/k)")
            ax.set_xticks(range(len(cols)), xlabels, rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(len(rows)), ylabels, fontsize=8)
            peak = max((v for row in matrix for v in row), default=0.0)
            for i, row in enumerate(matrix):
                for j, v in enumerate(row):
                    if v:
                        color = "white" if v > peak / 2 else "black"
                        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7, color=color)
        else:
            ax.text(0.5, 0.5, "no charge items", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(
            f"charge confusion, top {len(rows)} gold charges\ndiagonal: exactly right answers only; a wrong answer "
            "counts under the charges it got wrong",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, list(rows)


def write_report(out_dir: Path, metrics: dict[str, Any], records: Sequence[dict[str, Any]]) -> Path:
    """Write report.md and the three PNG plots into out_dir; returns the report path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overall = metrics.get("overall", {})
    plot_score_distribution(records, out_dir / "score_distribution.png")
    plot_term_errors(records, out_dir / "term_error_hist.png")
    _, charges = plot_charge_confusion(records, out_dir / "charge_confusion.png")
    lines = [f"# Evaluation report: {overall.get('name', out_dir.name)}", ""]
    lines += [
        f"- data: `{overall.get('data')}`; predictions: `{overall.get('predictions')}`",
        f"- reward mode: **{overall.get('mode')}** (asked: {overall.get('mode_requested')})",
    ]
    if overall.get("mode_note"):
        lines.append(f"- note: {overall['mode_note']}")
    if "term_unit" in overall:  # reports written before --term-unit have none
        read = "months" if overall.get("term_bare_number_months") else "unreadable"
        lines.append(f"- term unit: **{overall['term_unit']}** (a bare number as the term answer reads as {read})")
    stopped = overall.get("stopped")
    if stopped:
        lines.append(
            f"- **PARTIAL RUN: scoring stopped** after {stopped['scored_responses']} responses "
            f"({stopped['unscored_responses']} not scored, the first at predictions line "
            f"{stopped['first_unscored_line']}): "
            f"{stopped['reason']}"
        )
    lines.append(f"- {official_lists_line(overall.get('cail_labels') or {})}")
    lines += [
        f"- items scored: {overall.get('n_items')} of {overall.get('n_items_in_data')} "
        f"({overall.get('items_without_prediction')} without prediction); responses: {overall.get('n_responses')}",
        f"- format-ok rate {fmt(overall.get('format_ok_rate'), 'rate')}, mean reward "
        f"{fmt(overall.get('mean_reward'), 'num')}, judge calls per response "
        f"{fmt(overall.get('judge_calls_per_response'), 'num')}",
        "",
        "Per-item metrics average each item's responses first; CAIL F1 counts each response with weight 1/k.",
        "CAIL macro-F1 averages over labels seen in gold or prediction; the *vocabulary* variant follows the",
        "official judger (every known label enters, a label absent from both sides counts F1 = 1).",
        "Charges are compared after canonicalization (贩卖毒品罪 = 走私、贩卖、运输、制造毒品罪), as in the reward.",
        "Term MAE: an unreadable answer on a month-count gold counts as 0 months predicted (error = gold months);",
        "a life/death answer there has no month count and is left out (both counted in the term table).",
        "",
    ]
    if overall.get("repeated_without_sample"):
        lines[-1:-1] = [
            f"Note: {overall['repeated_without_sample']} response(s) repeat an earlier response of their item and",
            "carry no `sample` id; they were scored as separate samples.",
        ]
    full_lists = bool((overall.get("cail_labels") or {}).get("full_lists"))
    for task in TASKS:
        block = metrics.get(task, {})
        lines += [f"## {TASK_TITLES[task]}", "", *task_table(task, block, full_lists), ""]
    lines += input_problems(overall)
    lines += ["", "## Plots", ""]
    lines += ["![score distribution](score_distribution.png)", "", "![term error](term_error_hist.png)", ""]
    lines += ["![charge confusion](charge_confusion.png)", ""]
    if charges:
        lines += ["Charge codes: " + ", ".join(f"C{i + 1} = {c}" for i, c in enumerate(charges)), ""]
    lines += ["Term error bins: one month each within ±24 months, else bands 0, 1–2, 3–5, 6–11, 12–23, 24–59, 60+.", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def official_lists_line(labels: dict[str, Any]) -> str:
    """Where cail_score_official's label lists come from, and whether the score compares with published results."""
    if not labels.get("path"):
        return f"CAIL2018 official score: not computed — {labels.get('note') or 'no contest label lists'}"
    sizes = labels.get("official_sizes") or {}
    verdict = (
        "the full contest lists: **cail_score_official is the number to put next to published CAIL2018 results**"
        if labels.get("full_lists")
        else f"not the full contest lists ({sizes.get('charges')} / {sizes.get('articles')}): cail_score_official is "
        "NOT comparable with published CAIL2018 results; prepare from the contest's train file for the full lists"
    )
    return (
        f"CAIL2018 label lists: {labels.get('charges')} charges, {labels.get('articles')} articles from "
        f"`{labels['path']}` — {verdict}"
    )


def headline_table(runs: dict[str, dict[str, Any]]) -> str:
    """A short plain-text table (task × headline metric × run, readable labels), for the terminal."""
    names = list(runs)
    rows = [("task", "metric", *names)]
    for task in TASKS:
        blocks = [runs[n].get(task, {}) for n in names]
        for key, label, kind in HEADLINE[task]:
            several = False
            if task == "verdict" and key == "judge_score_mean":
                label, several = verdict_panel_title(list(runs.values()))
                label = COMPARE_VERDICT_LABEL if several else label
            rows.append((task, label, *(fmt(b.get(key), kind) for b in blocks)))
            if several:  # the runs were graded differently: say by whom, run by run
                rows.append((task, "graded by", *(b.get("graded_by") or "—" for b in blocks)))
    return text_table(rows)


def compare_sections(
    runs: Sequence[dict[str, Any]], names: Sequence[str], out_dir: Path, coverage: ItemCoverage | None = None
) -> list[str]:
    """compare.md body: one table per task (run per column) and one bar chart per task (compare_<task>.png)."""
    lines: list[str] = []
    for task in TASKS:
        mark = ""
        if coverage is not None:  # the task's own items: two runs may share the charge items but not the others
            counts = [m.get(task, {}).get("n_items") for m in runs]
            mark = coverage.only(lambda source, task=task: source == data_source(task), counts).mark()
        lines += [f"## {TASK_TITLES[task]}", ""] + ([f"**{mark}**", ""] if mark else [])
        lines += ["| metric | " + " | ".join(names) + " |"]
        lines.append("| --- |" + " --- |" * len(names))
        for key, label, kind in ROWS[task] + COMMON_ROWS:
            if any(key in m.get(task, {}) for m in runs):
                if task == "verdict" and key == "judge_score_mean":
                    graders = {m.get(task, {}).get("graded_by") for m in runs}
                    one = len(graders) == 1
                    label = verdict_score_label({"graded_by": next(iter(graders))}) if one else COMPARE_VERDICT_LABEL
                lines.append(f"| {label} | " + " | ".join(fmt(m.get(task, {}).get(key), kind) for m in runs) + " |")
                if task == "verdict" and key == "judge_score_mean":
                    graded = [m.get(task, {}).get("graded_by") or "—" for m in runs]
                    lines.append("| graded by | " + " | ".join(graded) + " |")
        lines += ["", f"![{task}](compare_{task}.png)", ""]
        plot_compare(task, runs, names, out_dir / f"compare_{task}.png", mark)
    return lines


def compare_reports(report_dirs: Sequence[Path], out_dir: Path) -> Path:
    """Side-by-side compare.md (one table per task, run per column), compare.json and one bar chart per task."""
    return write_compare(report_dirs, out_dir, compare_sections)[0]


def verdict_panel_title(runs: Sequence[dict[str, Any]]) -> tuple[str, bool]:
    """The verdict score's label in compare from who graded it, and whether the runs' graders differ."""
    graders = {m.get("verdict", {}).get("graded_by") for m in runs} - {None}
    if len(graders) > 1:
        return VERDICT_PANEL_SEVERAL, True
    return verdict_score_label({"graded_by": next(iter(graders), None)}), False


def compare_panels(task: str, runs: Sequence[dict[str, Any]]) -> list[Panel]:
    """The task's headline metrics as compare panels (readable titles; the verdict score titled by its grader)."""
    panels = []
    for key, label, kind in HEADLINE[task]:
        note = None
        if task == "verdict" and key == "judge_score_mean":
            label, several = verdict_panel_title(runs)
            note = (lambda m: m.get("verdict", {}).get("graded_by") or "—") if several else None
        scale = (-2.0, 2.0) if key == "judge_score_mean" else None
        panels.append(Panel(label, lambda m, key=key: m.get(task, {}).get(key), kind, note, scale))
    return panels


def plot_compare(task: str, runs: Sequence[dict[str, Any]], names: Sequence[str], path: Path, mark: str = "") -> Path:
    """Grouped bars: the task's headline metrics that some run has (one panel each), one bar per run."""
    counts = [m.get(task, {}).get("n_items") for m in runs]
    return plot_bars(PLOT_TITLES[task], compare_panels(task, runs), runs, names, path, counts, mark)
