"""recipes.legal.evaluate end to end: bad input, metrics worked out by hand, report, compare, the --model path."""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.figures import bar_texts, capture_figures, panel_titles, suptitle
from helpers.judge_fixtures import judge_server  # noqa: F401  (fixture; harmless once conftest re-exports it)

from data.domains.legal.label_sets import LabelSets
from recipes.evaluation import evaluate as G
from recipes.evaluation.report import fmt
from recipes.legal import eval_scoring as S
from recipes.legal import evaluate as E
from recipes.legal import metrics as M
from recipes.legal import report as R
from rewards.format import check_format, extract_answer

REPO = Path(__file__).resolve().parents[2]
VERDICT_7 = "被告人张某犯盗窃罪，判处有期徒刑六个月，并处罚金人民币二千元。"
VERDICT_8 = "被告人李某犯诈骗罪，判处有期徒刑一年，并处罚金人民币五千元。"

# index → (task, gold text, charges, articles, term_kind, term_months)
ITEMS = {
    0: ("charge", "盗窃罪", ["盗窃罪"], [264], "fixed", 6),
    1: ("charge", "盗窃罪、诈骗罪", ["盗窃罪", "诈骗罪"], [264, 266], "fixed", 10),
    2: ("article", "第二百六十四条", ["盗窃罪"], [264], "fixed", 6),
    3: ("article", "第二百六十四条、第六十七条", ["盗窃罪"], [264, 67], "fixed", 10),
    4: ("term", "有期徒刑六个月", ["盗窃罪"], [264], "fixed", 6),
    5: ("term", "无期徒刑", ["故意杀人罪"], [232], "life", 0),
    6: ("term", "有期徒刑一年", ["盗窃罪"], [264], "fixed", 12),
    7: ("verdict", VERDICT_7, ["盗窃罪"], [264], "fixed", 6),
    8: ("verdict", VERDICT_8, ["诈骗罪"], [266], "fixed", 12),
}


def make_row(index: int) -> dict:
    """A parquet row in the data contract's schema."""
    task, gold, charges, articles, kind, months = ITEMS[index]
    return {
        "data_source": f"legal/{task}",
        "prompt": [{"role": "user", "content": f"案件事实{index}。请预测。"}],
        "ability": "legal",
        "reward_model": {"style": "rule", "ground_truth": gold},
        "extra_info": {
            "index": index,
            "task": task,
            "charges": charges,
            "articles": articles,
            "term_kind": kind,
            "term_months": months,
            "fine": 2000,
            "verdict": VERDICT_7,
            "split": "test",
            "case_id": f"case-{index}",
        },
    }


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    """A tiny test.parquet built here (independent of data.prepare)."""
    path = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pylist([make_row(i) for i in ITEMS]), path)
    return path


def ans(text: str) -> str:
    """A well-formatted response (the template opens <think>) answering text."""
    return f"想一想</think><answer>{text}</answer>"


# (index, response); index 0, 5 and 7 have two responses each.
PREDICTIONS = [
    (0, ans("盗窃罪")),
    (0, ans("诈骗罪")),
    (1, ans("盗窃罪")),
    (2, ans("第二百六十四条")),
    (3, ans("第264条、第67条、第72条")),
    (4, ans("有期徒刑八个月")),
    (5, ans("无期徒刑")),
    (5, ans("有期徒刑十五年")),
    (6, "随便想想</think>没有答案"),  # no answer block: format fails, unparseable
    (7, ans("好，对")),
    (7, ans("好")),
    (8, ans("差")),
]


def write_predictions(path: Path, extra_lines: list[str] = ()) -> Path:
    """PREDICTIONS as JSONL (+ raw extra lines)."""
    lines = [
        json.dumps({"index": i, "data_source": f"legal/{ITEMS[i][0]}", "response": r}, ensure_ascii=False)
        for i, r in PREDICTIONS
    ]
    path.write_text("\n".join([*lines, *extra_lines]) + "\n", encoding="utf-8")
    return path


async def fake_compute_score(data_source, solution_str, ground_truth, extra_info=None, mode="rules", **kwargs):
    """A stand-in reward with hand-checkable values: format −1/0; verdict judge/rules grades from marker words.

    verdict, judge mode: +2 when the answer has 好, else −2 (judge_called); rules mode: +2 when it has 好 and 对.
    Other tasks: task_score 0. score = task_score + (0 if format ok else −1).
    """
    fmt = check_format(solution_str)
    answer = extract_answer(solution_str) or ""
    judge = data_source == "legal/verdict" and mode != "rules"
    task_score = 0.0
    if data_source == "legal/verdict":
        good = "好" in answer if judge else ("好" in answer and "对" in answer)
        task_score = 2.0 if good else -2.0
    return {
        "score": task_score + (0.0 if fmt else -1.0),
        "format_ok": int(fmt),
        "format_score": 0.0 if fmt else -1.0,
        "task_score": task_score,
        "acc": float(task_score == 2.0),
        "judge_called": int(judge),
        "judge_failed": 0,
        "judge_latency_ms": 0.0,
        "cache_hit": 0,
    }


def evaluate_with_fake(data_path: Path, pred_path: Path, mode: str, monkeypatch) -> tuple[dict, list[dict]]:
    """Load, score with fake_compute_score, compute metrics (rules grades come from the fake in rules mode)."""
    monkeypatch.setattr(S, "_rules_grader", lambda: None)
    data = E.load_data(data_path)
    loaded = E.load_predictions(pred_path, data)
    records = asyncio.run(
        E.score_all(loaded.predictions, data, mode, {"mode": mode}, concurrency=4, compute_score=fake_compute_score)
    )
    return E.compute_metrics(records, data), records


def test_metrics_by_hand_judge_mode(data_path, tmp_path, monkeypatch):
    """Every task's metrics on PREDICTIONS, each worked out by hand (multi-response items averaged per item)."""
    metrics, records = evaluate_with_fake(data_path, write_predictions(tmp_path / "p.jsonl"), "judge", monkeypatch)
    assert len(records) == 12
    ch = metrics["charge"]
    # item 0: responses {盗窃罪} (exact) and {诈骗罪} (wrong) → accuracy ½, set F1 ½; item 1: {盗窃罪} vs
    # {盗窃罪, 诈骗罪} → not exact, F1 = 2·1·½/1.5 = 2/3.  accuracy = (½ + 0)/2 = ¼; set_f1 = (½ + ⅔)/2 = 7/12.
    assert (ch["n_items"], ch["n_responses"]) == (2, 3)
    assert ch["accuracy"] == pytest.approx(0.25)
    assert ch["set_f1"] == pytest.approx(7 / 12)
    # CAIL, weights ½, ½, 1: 盗窃罪 TP ½+1 = 1.5, FN ½ → P 1, R ¾ → F1 6/7; 诈骗罪 FP ½, FN 1 → F1 0.
    # micro: TP 1.5, FP ½, FN 1.5 → P ¾, R ½ → F1 0.6; macro (6/7 + 0)/2 = 3/7; score (0.6 + 3/7)/2 × 100 = 360/7.
    assert ch["cail_micro_f1"] == pytest.approx(0.6)
    assert ch["cail_macro_f1"] == pytest.approx(3 / 7)
    assert ch["cail_score"] == pytest.approx(360 / 7)
    ar = metrics["article"]
    # item 2: {264} exact, F1 1; item 3: {264, 67, 72} vs {264, 67} → P ⅔, R 1 → F1 0.8.
    # accuracy (1 + 0)/2 = ½; set_f1 (1 + 0.8)/2 = 0.9; CAIL: 264 TP 2, 67 TP 1, 72 FP 1 → macro (1+1+0)/3 = ⅔,
    # micro TP 3, FP 1 → P ¾, R 1 → 6/7; score (6/7 + ⅔)/2 × 100 = 1600/21.
    assert ar["accuracy"] == pytest.approx(0.5)
    assert ar["set_f1"] == pytest.approx(0.9)
    assert ar["cail_score"] == pytest.approx(1600 / 21)
    te = metrics["term"]
    # item 4: gold 6, pred 8 → |err| 2, v = ln(9/7) = 0.251 → CAIL 0.8, LawBench distance ln(9/7)
    # item 5 (life): 无期徒刑 → kind ok, CAIL 1; 十五年 → kind wrong, CAIL 0 → item means ½ and ½; LawBench skips it
    # item 6: gold 12, no answer → CAIL 0, LawBench ln 216; MAE counts it as 0 months predicted → error 12
    # MAE over items 4 and 6: (2 + 12) / 2 = 7 (item 5 is life: not a month count)
    assert te["mae_months"] == pytest.approx(7.0)
    assert te["mae_items"] == 2
    assert te["mae_unparseable"] == 1
    assert te["mae_life_death_predicted"] == 0
    assert te["kind_accuracy"] == pytest.approx(0.5)
    assert te["cail_term_score"] == pytest.approx((0.8 + 0.5 + 0.0) / 3 * 100)
    assert te["lawbench_term_score"] == pytest.approx((0.5 - math.log(9 / 7) / (2 * math.log(216))) * 100)
    assert te["accuracy"] == pytest.approx((0 + 0.5 + 0) / 3)  # only 无期徒刑 for item 5 is exact
    assert te["unparseable"] == 1
    # format: item 6 fails → term format_ok_rate ⅔, term mean reward (0 + 0 − 1)/3
    assert te["format_ok_rate"] == pytest.approx(2 / 3)
    assert te["mean_reward"] == pytest.approx(-1 / 3)
    ve = metrics["verdict"]
    # judge: item 7 → 好对 +2, 好 +2 → item mean 2; item 8 → 差 −2.  judge_score_mean (2 − 2)/2 = 0.
    # rules: 好对 +2 (agree), 好 −2 (disagree), 差 −2 (agree) → agreement 2/3 over 3 responses with both grades.
    assert ve["judge_score_mean"] == pytest.approx(0.0)
    assert ve["judge_rules_agreement"] == pytest.approx(2 / 3)
    assert ve["judge_rules_pairs"] == 3
    assert ve["judge_calls"] == 3
    ov = metrics["overall"]
    # 9 items, 12 responses; items' mean reward: verdict 2 and −2, term item 6 −1, others 0 → −1/9
    assert (ov["n_items"], ov["n_responses"], ov["items_without_prediction"]) == (9, 12, 0)
    assert ov["mean_reward"] == pytest.approx(-1 / 9)
    assert ov["format_ok_rate"] == pytest.approx(8 / 9)
    assert ov["judge_calls_per_response"] == pytest.approx(3 / 12)


def test_metrics_rules_mode_has_no_agreement(data_path, tmp_path, monkeypatch):
    """Rules mode: verdict grades are the rules grades; no judge → no agreement pairs."""
    metrics, _ = evaluate_with_fake(data_path, write_predictions(tmp_path / "p.jsonl"), "rules", monkeypatch)
    ve = metrics["verdict"]
    # rules: item 7 → (+2 − 2)/2 = 0; item 8 → −2; mean −1
    assert ve["judge_score_mean"] == pytest.approx(-1.0)
    assert ve["graded_by"] == "rules"
    assert ve["judge_rules_agreement"] is None
    assert ve["judge_rules_pairs"] == 0
    assert metrics["overall"]["judge_calls"] == 0


BAD_LINES = [
    json.dumps({"index": 99, "data_source": "legal/charge", "response": ans("盗窃罪")}),  # line 13: unknown index
    json.dumps({"index": 2, "data_source": "legal/article", "response": ans("第二百六十四条")}, ensure_ascii=False),
    "{not json",  # line 15: malformed
    json.dumps({"index": 2, "data_source": "legal/term", "response": ans("x")}),  # line 16: mismatch
    json.dumps({"index": 3, "data_source": "legal/article", "response": "   "}),  # line 17: empty (scored)
    json.dumps({"index": 3, "data_source": "legal/article"}),  # line 18: missing response
    json.dumps([1, 2]),  # line 19: not an object
    json.dumps({"index": 0, "data_source": "legal/charge", "response": ans("盗窃罪"), "sample": 3}),  # distinct sample
]


def test_bad_input_counted(data_path, tmp_path):
    """Bad lines are counted by reason; a repeat without sample id is a separate sample (kept, counted apart)."""
    data = E.load_data(data_path)
    loaded = E.load_predictions(write_predictions(tmp_path / "p.jsonl", BAD_LINES), data)
    assert dict(loaded.skipped) == {
        "unknown_index": 1,
        "malformed_json": 2,
        "data_source_mismatch": 1,
        "missing_field": 1,
    }
    assert loaded.empty_responses == 1
    # line 14 repeats line 4 (index 2, same text, no sample id): kept as a second sample of item 2
    assert loaded.repeated_without_sample == 1
    # 12 good + line 14 + the empty one (17) + the sample-3 one (20)
    assert len(loaded.predictions) == 15
    assert [p.line for p in loaded.predictions if p.index == 2] == [4, 14]
    assert [(i["line"], i["reason"]) for i in loaded.issues] == [
        (13, "unknown_index"),
        (15, "malformed_json"),
        (16, "data_source_mismatch"),
        (17, "empty_response"),
        (18, "missing_field"),
        (19, "malformed_json"),
    ]


def _line(index: int, response: str, sample=None) -> str:
    obj = {"index": index, "data_source": f"legal/{ITEMS[index][0]}", "response": response}
    if sample is not None:
        obj["sample"] = sample
    return json.dumps(obj, ensure_ascii=False)


# Multi-response items: lines without sample id are all kept; with one, an exact repeat is a duplicate and a
# reused id with another text is a conflict.
MULTI_LINES = [
    _line(0, ans("盗窃罪")),  # 1: item 0, kept
    _line(0, ans("盗窃罪")),  # 2: same text, no sample id → a second sample, kept (repeated_without_sample 1)
    _line(0, ans("诈骗罪")),  # 3: kept
    _line(1, ans("盗窃罪"), sample=0),  # 4: item 1 sample 0, kept
    _line(1, ans("盗窃罪"), sample=1),  # 5: same text, other sample id, kept
    _line(1, ans("盗窃罪"), sample=0),  # 6: repeats line 4 exactly → duplicate, skipped
    _line(1, ans("诈骗罪"), sample=1),  # 7: sample 1 already has another text → sample_conflict, skipped
]


def test_multi_response_rule(data_path, tmp_path, monkeypatch):
    """Kept and dropped lines of multi-response items, and the metrics on what is kept (worked out by hand)."""
    path = tmp_path / "multi.jsonl"
    path.write_text("\n".join(MULTI_LINES) + "\n", encoding="utf-8")
    data = E.load_data(data_path)
    loaded = E.load_predictions(path, data)
    assert [p.line for p in loaded.predictions] == [1, 2, 3, 4, 5]
    assert dict(loaded.skipped) == {"duplicate": 1, "sample_conflict": 1}
    assert loaded.repeated_without_sample == 1
    assert [(i["line"], i["reason"]) for i in loaded.issues] == [(6, "duplicate"), (7, "sample_conflict")]
    metrics, _ = evaluate_with_fake(data_path, path, "rules", monkeypatch)
    ch = metrics["charge"]
    # item 0 (gold {盗窃罪}): 盗窃 ✓, 盗窃 ✓, 诈骗 ✗ → accuracy 2/3, set F1 (1 + 1 + 0)/3 = 2/3
    # item 1 (gold {盗窃罪, 诈骗罪}): 盗窃, 盗窃 → never exact, F1 2·1·½/1.5 = 2/3 each
    # accuracy (2/3 + 0)/2 = 1/3; set F1 (2/3 + 2/3)/2 = 2/3
    assert (ch["n_items"], ch["n_responses"]) == (2, 5)
    assert ch["accuracy"] == pytest.approx(1 / 3)
    assert ch["set_f1"] == pytest.approx(2 / 3)
    # --strict names the first dropped line
    with pytest.raises(E.EvaluationInputError, match=r"line 6: duplicate"):
        E.load_predictions(path, data, strict=True)
    path.write_text("\n".join(MULTI_LINES[:5] + MULTI_LINES[6:]) + "\n", encoding="utf-8")
    with pytest.raises(E.EvaluationInputError, match=r"line 6: sample_conflict"):
        E.load_predictions(path, data, strict=True)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        (BAD_LINES[0], r"line 13: unknown_index: index 99"),
        (BAD_LINES[2], r"line 13: malformed_json"),
        (BAD_LINES[3], r"line 13: data_source_mismatch"),
        (BAD_LINES[4], r"line 13: empty_response"),
        (BAD_LINES[5], r"line 13: missing_field"),
    ],
)
def test_bad_input_strict(data_path, tmp_path, bad_line, message):
    """--strict: the first bad line is an error naming the file line."""
    data = E.load_data(data_path)
    with pytest.raises(E.EvaluationInputError, match=message):
        E.load_predictions(write_predictions(tmp_path / "p.jsonl", [bad_line]), data, strict=True)


def test_report_and_compare_from_records(data_path, tmp_path, monkeypatch):
    """report.md has a table per task and the three PNGs; compare puts two runs side by side with bar charts."""
    pred = write_predictions(tmp_path / "p.jsonl")
    for name, mode in (("base", "rules"), ("step400", "judge")):
        metrics, records = evaluate_with_fake(data_path, pred, mode, monkeypatch)
        metrics["overall"].update(name=name, mode=mode, mode_requested=mode)
        out = tmp_path / name
        R.write_report(out, metrics, records)
        (out / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        text = (out / "report.md").read_text(encoding="utf-8")
        for title in R.TASK_TITLES.values():
            assert f"## {title}" in text
        assert "| CAIL2018 score ((micro+macro F1)/2 ×100) | 51.43 |" in text  # 360/7
        assert "| mean absolute error (months; unreadable answer = 0 months) | 7.00 |" in text
        assert "| of which: unreadable answers, counted as 0 months (responses) | 1 |" in text
        verdict_label = "mean task score (rules, −2 … +2)" if mode == "rules" else "mean judge score (−2 … +2)"
        assert f"| {verdict_label} | " in text
        for png in ("score_distribution.png", "term_error_hist.png", "charge_confusion.png"):
            assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    compare = R.compare_reports([tmp_path / "base", tmp_path / "step400"], tmp_path / "cmp")
    text = compare.read_text(encoding="utf-8")
    assert "| metric | base | step400 |" in text
    assert f"| {R.COMPARE_VERDICT_LABEL} | -1.00 | 0.00 |" in text  # one run graded by rules, one by the judge
    assert "| graded by | rules | judge |" in text
    for task in E.TASKS:
        assert (tmp_path / "cmp" / f"compare_{task}.png").exists()


def test_charge_confusion_counts(data_path, tmp_path, monkeypatch):
    """Confusion of PREDICTIONS: 盗窃罪 row gets ½ (item 0 exact) + ½ (wrong → 诈骗罪) + 1 (item 1 incomplete)."""
    _, records = evaluate_with_fake(data_path, write_predictions(tmp_path / "p.jsonl"), "rules", monkeypatch)
    rows, cols, matrix = R.charge_confusion(records)
    assert rows == ["盗窃罪", "诈骗罪"]  # 盗窃罪 gold in 3 responses, 诈骗罪 in 1
    assert cols == ["盗窃罪", "诈骗罪", "其他", "不全", "无"]
    # 盗窃罪: exact ½ (item 0, resp 1); wrong ½ predicted 诈骗罪 (item 0, resp 2); item 1 answered only 盗窃罪 of
    # its gold 盗窃罪、诈骗罪: not exact, no wrong charge → 不全 (it was a hit before: issue 29 item 10)
    assert matrix[0] == pytest.approx([0.5, 0.5, 0.0, 1.0, 0.0])
    # 诈骗罪 (item 1, weight 1): the same incomplete answer
    assert matrix[1] == pytest.approx([0.0, 0.0, 0.0, 1.0, 0.0])


def test_training_template_is_readable(tiny_tokenizer):
    """The training config's custom_chat_template renders the R1-zero prompt ending in <think>."""
    from recipes.evaluation.generation import render_prompts

    prompt = render_prompts(tiny_tokenizer, [make_row(0)["prompt"]], E.load_chat_template())[0]
    assert "案件事实0。请预测。" in prompt
    assert prompt.endswith("<think>")


def test_training_template_missing_is_a_clear_error():
    """A config without a chat template cannot render evaluation prompts: the error names the key."""
    with pytest.raises(E.EvaluationInputError, match="custom_chat_template is not set"):
        E.load_chat_template("legal_grpo", ["actor_rollout_ref.model.custom_chat_template=null"])


def test_model_without_vllm_fails_clearly(data_path, tmp_path):
    """--model on a machine without vLLM: exit code 2 and a message that says what to do."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "recipes.legal.evaluate",
            "--data",
            str(data_path),
            "--model",
            "/models/x",
            "--out",
            str(tmp_path / "r"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--model needs vLLM" in proc.stderr and "--predictions" in proc.stderr


@pytest.mark.parametrize(
    ("mode", "url", "effective", "noted"),
    [
        ("rules", None, "rules", False),
        ("judge", None, "rules", True),
        ("hybrid", None, "rules", True),
        ("judge", "http://127.0.0.1:1/v1", "judge", False),
        ("hybrid", "http://127.0.0.1:1/v1", "hybrid", False),
    ],
)
def test_resolve_mode(monkeypatch, mode, url, effective, noted):
    """Judge modes without a judge URL fall back to rules and say so."""
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    got, note = E.resolve_mode(mode, url)
    assert got == effective
    assert bool(note) == noted


# ------------------------------------------------------------------ end to end on the shipped sample (real reward)
# Every task reports these; each adds its own measures.
COMMON_KEYS = {"n_items", "n_responses", "format_ok_rate", "mean_reward", "unparseable", "judge_failures"}
LABEL_SET_KEYS = COMMON_KEYS | {"accuracy", "set_f1", "cail_score"}
CONTRACT_KEYS = {
    "charge": LABEL_SET_KEYS,
    "article": LABEL_SET_KEYS,
    "term": COMMON_KEYS | {"mae_months", "kind_accuracy", "cail_term_score", "lawbench_term_score"},
    "verdict": COMMON_KEYS | {"judge_score_mean", "judge_rules_agreement"},
}
WRONG_CHARGES = ("放火罪", "盗窃罪")
WRONG_ARTICLES = (1, 2)


@pytest.fixture(scope="module")
def sample_test_parquet(tmp_path_factory) -> Path:
    """data.prepare on the shipped CAIL2018 sample → test.parquet."""
    out = tmp_path_factory.mktemp("prepared")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "data.prepare",
            "--source",
            "cail2018",
            "--input",
            "data/samples/cail2018_sample.jsonl",
            "--output",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return out / "test.parquet"


def wrong_answer(row: dict) -> str:
    """An answer certainly wrong for the row's task."""
    task, extra = row["data_source"].split("/")[1], row["extra_info"]
    if task == "charge":
        return next(c for c in WRONG_CHARGES if c not in extra["charges"])
    if task == "article":
        return f"第{next(a for a in WRONG_ARTICLES if a not in extra['articles'])}条"
    if task == "term":
        return "死刑" if extra["term_kind"] != "death" else "有期徒刑一年"
    return "被告人无罪。"


def sample_predictions(parquet: Path, path: Path) -> tuple[list[dict], list[bool]]:
    """Gold answers for every other item of each task, wrong ones between (+ one unknown index, one malformed line)."""
    rows = pq.read_table(parquet).to_pylist()
    seen: Counter = Counter()
    right = []
    for row in rows:  # alternate right/wrong within each task
        right.append(seen[row["data_source"]] % 2 == 0)
        seen[row["data_source"]] += 1
    lines = []
    for row, ok in zip(rows, right, strict=True):
        text = row["reward_model"]["ground_truth"] if ok else wrong_answer(row)
        lines.append({"index": row["extra_info"]["index"], "data_source": row["data_source"], "response": ans(text)})
    body = [json.dumps(x, ensure_ascii=False) for x in lines]
    body += [json.dumps({"index": 10**9, "data_source": "legal/charge", "response": ans("x")}), "{oops"]
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    return rows, right


def expected_set_metrics(rows, right, task: str) -> tuple[float, float]:
    """(accuracy, CAIL score) for gold/wrong answers: right items are exact, wrong ones disjoint."""
    field = "charges" if task == "charge" else "articles"
    pairs = [
        (set(r["extra_info"][field]), ok)
        for r, ok in zip(rows, right, strict=True)
        if r["data_source"] == f"legal/{task}"
    ]
    golds = [g for g, _ in pairs]
    preds = []
    for g, ok in pairs:
        if ok:
            preds.append(g)
        elif task == "charge":
            preds.append({next(c for c in WRONG_CHARGES if c not in g)})
        else:
            preds.append({next(a for a in WRONG_ARTICLES if a not in g)})
    if task == "charge":  # compared as the reward compares them: canonical labels
        golds = [set(E.canonical_charges(g)) for g in golds]
        preds = [set(E.canonical_charges(p)) for p in preds]
    return sum(ok for _, ok in pairs) / len(pairs), M.cail_f1(golds, preds)["score"]


def test_end_to_end_rules_mode(sample_test_parquet, tmp_path):
    """evaluate --mode rules on the prepared sample: metrics.json, scores.jsonl, report.md and PNGs."""
    rows, right = sample_predictions(sample_test_parquet, tmp_path / "pred.jsonl")
    out = tmp_path / "report"
    code = E.main(
        [
            "--data",
            str(sample_test_parquet),
            "--predictions",
            str(tmp_path / "pred.jsonl"),
            "--out",
            str(out),
            "--mode",
            "rules",
            "--name",
            "sample-rules",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics) == {*E.TASKS, "overall"}
    for task, keys in CONTRACT_KEYS.items():
        assert keys <= set(metrics[task]), (task, keys - set(metrics[task]))
        assert metrics[task]["n_items"] == sum(r["data_source"] == f"legal/{task}" for r in rows)
    ov = metrics["overall"]
    assert ov["skipped"] == {"malformed_json": 1, "unknown_index": 1}
    assert (ov["n_responses"], ov["items_without_prediction"], ov["name"], ov["mode"]) == (
        len(rows),
        0,
        "sample-rules",
        "rules",
    )
    assert ov["format_ok_rate"] == 1.0  # every response is ans(...)
    for task in ("charge", "article"):
        accuracy, cail = expected_set_metrics(rows, right, task)
        assert metrics[task]["accuracy"] == pytest.approx(accuracy)
        assert metrics[task]["set_f1"] == pytest.approx(accuracy)  # right → F1 1, wrong (disjoint) → 0
        assert metrics[task]["cail_score"] == pytest.approx(cail)
    term_rows = [(r, ok) for r, ok in zip(rows, right, strict=True) if r["data_source"] == "legal/term"]
    # right → CAIL 1, wrong (死刑 for a non-death gold, a term for death) → 0
    assert metrics["term"]["cail_term_score"] == pytest.approx(100 * sum(ok for _, ok in term_rows) / len(term_rows))
    if any(ok and r["extra_info"]["term_kind"] in ("fixed", "none") for r, ok in term_rows):
        assert metrics["term"]["mae_months"] == 0.0  # only right answers have a month count
    # mean reward is the same compute_score training uses
    from rewards.legal import compute_score

    direct = [
        asyncio.run(
            compute_score(
                r["data_source"],
                ans(r["reward_model"]["ground_truth"] if ok else wrong_answer(r)),
                r["reward_model"]["ground_truth"],
                r["extra_info"],
                mode="rules",
            )
        )["score"]
        for r, ok in zip(rows, right, strict=True)
    ]
    assert ov["mean_reward"] == pytest.approx(sum(direct) / len(direct))
    assert len((out / "scores.jsonl").read_text(encoding="utf-8").splitlines()) == len(rows)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "malformed_json (skipped) | 1" in report
    for png in ("score_distribution.png", "term_error_hist.png", "charge_confusion.png"):
        assert (out / png).stat().st_size > 1000
    # --strict: the malformed line is an error naming its line
    strict = E.main(
        [
            "--data",
            str(sample_test_parquet),
            "--predictions",
            str(tmp_path / "pred.jsonl"),
            "--out",
            str(tmp_path / "strict"),
            "--mode",
            "rules",
            "--strict",
        ]
    )
    assert strict == 2 and not (tmp_path / "strict" / "metrics.json").exists()


def test_shared_entry_picks_legal_from_the_rows(sample_test_parquet, tmp_path, capsys):
    """`python -m recipes.evaluate` on legal rows is the legal evaluation: the same metrics.json, report and compare."""
    sample_predictions(sample_test_parquet, tmp_path / "pred.jsonl")
    common = ["--data", str(sample_test_parquet), "--predictions", str(tmp_path / "pred.jsonl"), "--mode", "rules"]
    assert E.main([*common, "--out", str(tmp_path / "legal"), "--name", "run"]) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "recipes.evaluate", *common, "--out", str(tmp_path / "shared"), "--name", "run"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    legal, shared = (json.loads((tmp_path / d / "metrics.json").read_text("utf-8")) for d in ("legal", "shared"))
    assert shared["overall"]["recipe"] == legal["overall"]["recipe"] == "legal"
    assert shared == legal
    report = (tmp_path / "shared" / "report.md").read_text(encoding="utf-8")
    assert report == (tmp_path / "legal" / "report.md").read_text(encoding="utf-8")
    from recipes.evaluation import evaluate as G

    capsys.readouterr()
    assert G.main(["compare", str(tmp_path / "legal"), str(tmp_path / "shared"), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"wrote {tmp_path / 'cmp' / 'compare.md'} (+ compare.json, compare_<task>.png)"
    assert printed[1].endswith("— the same items")  # the item-count line (issue 23 item 4)
    assert printed[2].split() == ["task", "metric", "run", "run", "(2)"]  # same name twice: both kept
    assert (tmp_path / "cmp" / "compare_term.png").exists()


def judge_reply(request: dict) -> str:
    """Scripted judge: term-error prompts get 0 months, grade prompts get 2 (fully correct)."""
    text = json.dumps(request, ensure_ascii=False)
    return "误差：0个月" if "误差" in text else "2"


def test_end_to_end_judge_mode_and_compare(sample_test_parquet, tmp_path, judge_server):  # noqa: F811
    """evaluate --mode judge against the loopback judge, then compare it with a rules run."""
    rows, right = sample_predictions(sample_test_parquet, tmp_path / "pred.jsonl")
    server = judge_server(reply=judge_reply)
    common = ["--data", str(sample_test_parquet), "--predictions", str(tmp_path / "pred.jsonl")]
    assert E.main([*common, "--out", str(tmp_path / "rules"), "--mode", "rules", "--name", "rules"]) == 0
    assert (
        E.main(
            [
                *common,
                "--out",
                str(tmp_path / "judge"),
                "--mode",
                "judge",
                "--name",
                "judge",
                "--judge-base-url",
                server.base_url,
                "--judge-model",
                server.model,
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "judge" / "metrics.json").read_text(encoding="utf-8"))
    ve = metrics["verdict"]
    verdict = [ok for r, ok in zip(rows, right, strict=True) if r["data_source"] == "legal/verdict"]
    # the judge says 2 for every verdict → +2 each; rules: gold answers +2 (agree), 被告人无罪 −2 (disagree)
    assert ve["judge_score_mean"] == pytest.approx(2.0)
    assert ve["judge_calls"] == len(verdict) and ve["judge_failures"] == 0
    assert ve["judge_rules_pairs"] == len(verdict)
    assert ve["judge_rules_agreement"] == pytest.approx(sum(verdict) / len(verdict))
    assert 0 < ve["judge_rules_agreement"] < 1  # both right and wrong verdicts were scored
    assert metrics["overall"]["mode"] == "judge"
    assert len(server.ok_requests) >= 1
    code = E.main(["compare", str(tmp_path / "rules"), str(tmp_path / "judge"), "--out", str(tmp_path / "cmp")])
    assert code == 0
    text = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert "| metric | rules | judge |" in text
    assert (tmp_path / "cmp" / "compare_verdict.png").exists()


# ------------------------------------------------------------------ canonical charges, term bins, plots, rounding
def test_partial_selective_charge_counts_as_correct(tmp_path, monkeypatch):
    """贩卖毒品罪 for gold 走私、贩卖、运输、制造毒品罪 (and the reverse) is correct in every charge metric."""
    full, part = "走私、贩卖、运输、制造毒品罪", "贩卖毒品罪"
    rows = [make_row(0), make_row(1)]
    rows[0]["extra_info"]["charges"] = [full]
    rows[0]["reward_model"]["ground_truth"] = full
    rows[1]["extra_info"]["charges"] = [part, "盗窃罪"]  # a partial form in the gold is canonicalized too
    data_path = tmp_path / "drugs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data_path)
    pred = tmp_path / "drugs.jsonl"
    pred.write_text(_line(0, ans(part)) + "\n" + _line(1, ans(f"{full}、盗窃罪")) + "\n", encoding="utf-8")
    assert E.gold_view(rows[1])["charges"] == sorted([full, "盗窃罪"])
    assert E.parse_prediction("charge", ans(part))["charges"] == [full]
    metrics, records = evaluate_with_fake(data_path, pred, "rules", monkeypatch)
    ch = metrics["charge"]
    # both items exact → accuracy 1, set F1 1; CAIL: every label TP only → micro = macro = 1 → 100
    assert (ch["accuracy"], ch["set_f1"], ch["cail_score"]) == (1.0, 1.0, 100.0)
    rows_c, cols, matrix = R.charge_confusion(records)
    assert rows_c[0] == full and matrix[0][0] == 2.0  # 2 hits on the full label, nothing off-diagonal
    assert sum(map(sum, matrix)) == 3.0


@pytest.mark.parametrize("entry", ["legal", "shared"])
def test_term_unit_months_reads_bare_numbers(data_path, tmp_path, entry):
    """Bare numbers answer a prompt that asked for months: months with --term-unit months, unreadable without."""
    pred = tmp_path / "bare.jsonl"
    pred.write_text(_line(4, ans("6")) + "\n" + _line(6, ans("刑期：12")) + "\n", encoding="utf-8")
    main = E.main if entry == "legal" else G.main  # python -m recipes.legal.evaluate / python -m recipes.evaluate
    runs = {}
    for unit in ("auto", "months"):
        flags = [] if unit == "auto" else ["--term-unit", unit]
        out = tmp_path / unit
        args = ["--data", str(data_path), "--predictions", str(pred), "--out", str(out), "--mode", "rules", *flags]
        assert main(args) == 0
        scores = [json.loads(line) for line in (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
        runs[unit] = json.loads((out / "metrics.json").read_text(encoding="utf-8")), scores, out
    metrics, scores, out = runs["auto"]
    assert (metrics["overall"]["term_unit"], metrics["overall"]["term_bare_number_months"]) == ("auto", False)
    assert [(r["pred_code"], r["unparseable"], r["task_score"]) for r in scores] == [(None, True, -2.0)] * 2
    assert metrics["term"]["accuracy"] == 0.0 and metrics["term"]["mae_unparseable"] == 2
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "- term unit: **auto** (a bare number as the term answer reads as unreadable)" in report
    metrics, scores, out = runs["months"]
    assert (metrics["overall"]["term_unit"], metrics["overall"]["term_bare_number_months"]) == ("months", True)
    assert [(r["pred_code"], r["unparseable"], r["task_score"], r["acc"]) for r in scores] == [
        (6, False, 0.0, 1.0),
        (12, False, 0.0, 1.0),
    ]
    term = metrics["term"]
    assert (term["accuracy"], term["mae_months"], term["mae_unparseable"]) == (1.0, 0.0, 0)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "- term unit: **months** (a bare number as the term answer reads as months)" in report


def test_term_unit_is_checked():
    """--term-unit takes auto or months only; the reward kwarg the same (its error names the key)."""
    with pytest.raises(SystemExit):
        E.build_parser().parse_args(["--data", "d", "--predictions", "p", "--out", "o", "--term-unit", "years"])
    from rewards.legal import get_options

    with pytest.raises(ValueError, match="term_unit"):
        get_options({"mode": "rules", "term_unit": "years"})
    assert get_options({"mode": "rules", "term_unit": "months"}).term_unit == "months"


def test_term_error_bins():
    """Integer-month bins within ±24 months; wider errors go to labelled bands where 0 stays its own bar."""
    labels, counts = R.term_error_bins([0.0, 0.0, 2.0, -1.0, 20.0])
    # range −1 … +20 → 22 one-month bins; 0 twice, −1 once, +2 once, +20 once
    assert labels[:4] == ["-1", "0", "+1", "+2"] and labels[-1] == "+20" and len(labels) == 22
    assert dict(zip(labels, counts, strict=True)) == {
        **{label: 0 for label in labels},
        "0": 2,
        "-1": 1,
        "+2": 1,
        "+20": 1,
    }
    labels, counts = R.term_error_bins([0, 0, 1, 2, 3, -5, -6, 11, 12, 23, 24, 59, 60, 300, -100])
    assert labels == [
        "≤−60",
        "−59…−24",
        "−23…−12",
        "−11…−6",
        "−5…−3",
        "−2…−1",
        "0",
        "+1…+2",
        "+3…+5",
        "+6…+11",
        "+12…+23",
        "+24…+59",
        "≥+60",
    ]
    # −100 → ≤−60; −6 → −11…−6; −5 → −5…−3; 0,0 → 0; 1,2 → +1…+2; 3 → +3…+5; 11 → +6…+11; 12,23 → +12…+23;
    # 24,59 → +24…+59; 60,300 → ≥+60
    assert counts == [1, 0, 0, 1, 1, 0, 2, 2, 1, 1, 2, 2, 2]
    assert R.term_error_bins([]) == ([], [])


def test_compare_bars_say_na_for_missing_values():
    """A missing metric is written "n/a" on its bar (an empty MAE bar must not read as perfect); values rounded."""
    assert R.bar_labels([None, 2.0, 1.65e-14, 51.4285714]) == ["n/a", "2", "0", "51.43"]


def test_fmt_rounds_noise_and_negative_zero():
    """Display rounding: 1.65e-14 and −1e-9 both show as 0.00."""
    assert R.fmt(1.65e-14, "x100") == "0.00"
    assert R.fmt(-1e-9, "num") == "0.00"
    assert R.fmt(None, "num") == "—"
    assert E._clean({"a": 1.65e-14, "b": [2300 / 56, float("nan")]}) == {"a": 0.0, "b": [41.071429, None]}


def test_charge_confusion_legend_without_cjk_font(data_path, tmp_path, monkeypatch):
    """Without a CJK font the figure carries a code → charge legend (glosses); the report lists Chinese names."""
    assert R.charge_legend(["盗窃罪", "某某罪"]) == ["C1  theft", "C2  (name in report.md)"]
    _, records = evaluate_with_fake(data_path, write_predictions(tmp_path / "p.jsonl"), "rules", monkeypatch)
    path, rows = R.plot_charge_confusion(records, tmp_path / "c.png", font=None)
    assert rows == ["盗窃罪", "诈骗罪"] and path.read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------ hostile predictions files and a judge that dies
def _run_main(data_path: Path, pred: Path, out: Path, *extra: str) -> int:
    return E.main(["--data", str(data_path), "--predictions", str(pred), "--out", str(out), "--mode", "rules", *extra])


def test_invalid_utf8_byte_is_counted_with_its_line(data_path, tmp_path):
    """One line with a byte that is not UTF-8 is skipped as bad_encoding naming its line; --strict stops there."""
    good = [_line(0, ans("盗窃罪")), _line(2, ans("第二百六十四条"))]
    pred = tmp_path / "p.jsonl"
    pred.write_bytes(good[0].encode() + b"\n" + b'{"index": 1, "response": "\xff\xfe"}\n' + good[1].encode() + b"\n")
    data = E.load_data(data_path)
    loaded = E.load_predictions(pred, data)
    assert [p.line for p in loaded.predictions] == [1, 3]
    assert dict(loaded.skipped) == {"bad_encoding": 1}
    assert loaded.issues[0]["line"] == 2 and "not UTF-8 at byte" in loaded.issues[0]["detail"]
    with pytest.raises(E.EvaluationInputError, match=r"p.jsonl line 2: bad_encoding"):
        E.load_predictions(pred, data, strict=True)
    assert _run_main(data_path, pred, tmp_path / "out") == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["skipped"] == {"bad_encoding": 1} and metrics["overall"]["n_responses"] == 2


def test_lone_surrogate_is_scored_not_a_crash(data_path, tmp_path, judge_server):  # noqa: F811
    """A lone surrogate (valid JSON, not encodable) is replaced by U+FFFD and scored, also through the judge."""
    server = judge_server(reply="2")
    pred = tmp_path / "p.jsonl"
    lines = [
        '{"index": 7, "data_source": "legal/verdict", "response": "想</think><answer>\\ud800好\\udfff</answer>"}',
        '{"index": 0, "data_source": "legal/charge", "response": "想</think><answer>盗窃罪\\ud83d</answer>", '
        '"sample": "s\\udc00"}',
    ]
    pred.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    code = E.main(
        [
            "--data",
            str(data_path),
            "--predictions",
            str(pred),
            "--out",
            str(out),
            "--mode",
            "judge",
            "--judge-base-url",
            server.base_url,
            "--judge-model",
            server.model,
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["n_responses"] == 2 and metrics["overall"]["surrogates_replaced"] == 2
    assert [i["reason"] for i in metrics["overall"]["issues"]] == ["lone_surrogate", "lone_surrogate"]
    assert metrics["verdict"]["judge_calls"] == 1 and metrics["verdict"]["judge_failures"] == 0
    assert "\ufffd好\ufffd" in server.ok_requests[0].user_text
    assert len((out / "scores.jsonl").read_text(encoding="utf-8").splitlines()) == 2


def test_concurrency_zero_is_refused_not_a_hang(data_path, tmp_path):
    """--concurrency 0 is a usage error (exit 2); score_all(concurrency=0) raises at once instead of waiting forever."""
    pred = write_predictions(tmp_path / "p.jsonl")
    with pytest.raises(SystemExit) as exc:
        _run_main(data_path, pred, tmp_path / "out", "--concurrency", "0")
    assert exc.value.code == 2
    data = E.load_data(data_path)
    loaded = E.load_predictions(pred, data)

    async def score() -> None:
        await asyncio.wait_for(
            E.score_all(
                loaded.predictions, data, "rules", {"mode": "rules"}, concurrency=0, compute_score=fake_compute_score
            ),
            timeout=10,
        )

    with pytest.raises(E.EvaluationInputError, match="--concurrency must be an integer >= 1"):
        asyncio.run(score())


@pytest.mark.parametrize("body", [b"", b"\n\n", b"{oops\n[1]\n"], ids=["empty", "blank-lines", "only-bad-lines"])
def test_nothing_to_score_is_an_error(data_path, tmp_path, body):
    """A predictions file with nothing to score exits 2 with the reason and writes no report."""
    pred = tmp_path / "p.jsonl"
    pred.write_bytes(body)
    with pytest.raises(E.EvaluationInputError, match=r"p.jsonl: no prediction to score"):
        E.load_predictions(pred, E.load_data(data_path))
    assert _run_main(data_path, pred, tmp_path / "out") == 2
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_judge_dying_mid_run_keeps_what_was_scored(data_path, tmp_path, monkeypatch, caplog):
    """The judge gone after 5 responses: exit 3, metrics.json/scores.jsonl hold the 5, overall.stopped says where."""
    import rewards.legal
    from judge.client import JudgeUnavailableError

    calls = []

    async def dying(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
        calls.append(data_source)
        if len(calls) > 5:
            raise JudgeUnavailableError("judge at http://127.0.0.1:1/v1: 32 consecutive failures")
        return await fake_compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)

    monkeypatch.setattr(rewards.legal, "compute_score", dying)
    pred = write_predictions(tmp_path / "p.jsonl")
    out = tmp_path / "out"
    assert _run_main(data_path, pred, out, "--concurrency", "1") == 3
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    ov = metrics["overall"]
    assert ov["complete"] is False and ov["n_responses"] == 5
    assert ov["stopped"]["scored_responses"] == 5 and ov["stopped"]["unscored_responses"] == len(PREDICTIONS) - 5
    assert ov["stopped"]["first_unscored_line"] == 6 and ov["stopped"]["unscored_lines"][:2] == [6, 7]
    assert "JudgeUnavailableError" in ov["stopped"]["reason"]
    assert [json.loads(x)["line"] for x in (out / "scores.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5]
    assert "PARTIAL RUN" in (out / "report.md").read_text(encoding="utf-8")
    assert "first unscored: predictions line 6" in caplog.text
    # a complete run says so
    monkeypatch.setattr(rewards.legal, "compute_score", fake_compute_score)
    assert _run_main(data_path, pred, tmp_path / "full") == 0
    full = json.loads((tmp_path / "full" / "metrics.json").read_text(encoding="utf-8"))["overall"]
    assert full["complete"] is True and full["stopped"] is None


def test_compare_prints_where_and_a_table(data_path, tmp_path, monkeypatch, capsys):
    """`compare` prints the path it wrote and a short headline table (one column per run)."""
    pred = write_predictions(tmp_path / "p.jsonl")
    monkeypatch.setattr(S, "_rules_grader", lambda: None)
    for name in ("base", "step400"):
        assert _run_main(data_path, pred, tmp_path / name, "--name", name) == 0
    capsys.readouterr()
    assert E.main(["compare", str(tmp_path / "base"), str(tmp_path / "step400"), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"wrote {tmp_path / 'cmp' / 'compare.md'}")
    assert printed[1] == "items: base 9, step400 9 — the same items"
    assert printed[2].split() == ["task", "metric", "base", "step400"]
    assert any(line.startswith("charge") and "accuracy (exact set)" in line for line in printed)
    mae = next(line for line in printed if "MAE, months (lower is better)" in line)
    assert mae.split()[0] == "term" and mae.split()[-2:] == ["7.00", "7.00"]


# ------------------------------------------------------------------ compare: readable plots, item counts
# contest-like lists with a label no item has (it scores F1 = 1 in the official macro-F1, unlike cail_score's)
LISTS = LabelSets(frozenset({"盗窃罪", "诈骗罪", "抢劫罪"}), frozenset({264, 266, 67}), "test", "lists.json")


def scored_report(out: Path, name: str, mode: str, data_path: Path, pred: Path, monkeypatch, lists=LISTS) -> dict:
    """A report directory (metrics.json, scores.jsonl, report.md, plots) from fake_compute_score's scores."""
    monkeypatch.setattr(S, "_rules_grader", lambda: None)
    data = E.load_data(data_path)
    loaded = E.load_predictions(pred, data)
    records = asyncio.run(
        E.score_all(loaded.predictions, data, mode, {"mode": mode}, concurrency=4, compute_score=fake_compute_score)
    )
    metrics = E.compute_metrics(records, data, lists)
    metrics["overall"].update(name=name, recipe="legal", mode=mode, mode_requested=mode, data=str(data_path))
    return G.write_outputs(out, metrics, records, R.write_report)


RAW_KEY = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")  # set_f1, cail_score, judge_score_mean …


def test_compare_plots_are_titled_readably(data_path, tmp_path, monkeypatch):
    """compare_<task>.png: readable titles, the official CAIL score, the verdict titled by its grader."""
    pred = write_predictions(tmp_path / "p.jsonl")
    runs = {n: scored_report(tmp_path / n, n, mode, data_path, pred, monkeypatch)
            for n, mode in (("base", "rules"), ("step400", "judge"))}  # fmt: skip
    figures = capture_figures(monkeypatch)
    R.compare_reports([tmp_path / "base", tmp_path / "step400"], tmp_path / "cmp")
    for task in E.TASKS:
        titles = panel_titles(figures[f"compare_{task}.png"])
        assert titles and not any(RAW_KEY.search(t) for t in titles), titles
    charge = figures["compare_charge.png"]
    assert panel_titles(charge) == ["accuracy (exact set)", "set F1 per item", "CAIL2018 official score (×100)"]
    official = [p.get_height() for p in charge.axes[2].patches]  # the bars drawn are cail_score_official
    assert official == pytest.approx([runs[n]["charge"]["cail_score_official"] for n in ("base", "step400")])
    assert official != pytest.approx([runs[n]["charge"]["cail_score"] for n in ("base", "step400")])
    assert charge.axes[0].patches[0].get_height() == pytest.approx(100 * runs["base"]["charge"]["accuracy"])
    assert bar_texts(charge.axes[0]) == [fmt(runs[n]["charge"]["accuracy"], "rate") for n in ("base", "step400")]
    # verdict: rules graded one run, the judge the other → the title names no grader, each bar names its own;
    # judge–rules agreement is drawn (the judge run has it)
    verdict = figures["compare_verdict.png"]
    assert panel_titles(verdict) == [R.VERDICT_PANEL_SEVERAL, "judge–rules agreement"]
    assert [t.split("\n")[-1] for t in bar_texts(verdict.axes[0])] == ["rules", "judge"]


@pytest.mark.parametrize(
    ("modes", "verdict_title"),
    [(("rules", "rules"), "mean task score (rules, −2 … +2)"), (("judge", "judge"), "mean judge score (−2 … +2)")],
)
def test_compare_verdict_panel_is_titled_by_its_grader(data_path, tmp_path, monkeypatch, modes, verdict_title):
    """One grader: the verdict panel says which; a panel no run has a value for (agreement in rules mode) is gone."""
    pred = write_predictions(tmp_path / "p.jsonl")
    for i, mode in enumerate(modes):
        scored_report(tmp_path / f"r{i}", f"r{i}", mode, data_path, pred, monkeypatch, lists=None)
    figures = capture_figures(monkeypatch)
    R.compare_reports([tmp_path / "r0", tmp_path / "r1"], tmp_path / "cmp")
    verdict = panel_titles(figures["compare_verdict.png"])
    assert verdict[0] == verdict_title
    assert ("judge–rules agreement" in verdict) == (modes[0] == "judge")  # rules mode: no agreement, no panel
    # no contest lists: cail_score_official is null in both runs, so its panel is not drawn
    assert panel_titles(figures["compare_charge.png"]) == ["accuracy (exact set)", "set F1 per item"]


def test_compare_marks_runs_over_different_items(data_path, tmp_path, monkeypatch, capsys):
    """Each run's item count heads compare.md, the terminal and the plots; different item sets are marked."""
    full = write_predictions(tmp_path / "full.jsonl")
    part = tmp_path / "part.jsonl"  # items 0, 1 (charge) and 4, 5 (term) only
    part.write_text("\n".join(_line(i, r) for i, r in PREDICTIONS if i in (0, 1, 4, 5)) + "\n", encoding="utf-8")
    scored_report(tmp_path / "full", "full", "rules", data_path, full, monkeypatch)
    scored_report(tmp_path / "part", "part", "rules", data_path, part, monkeypatch)
    figures = capture_figures(monkeypatch)
    capsys.readouterr()
    assert E.main(["compare", str(tmp_path / "part"), str(tmp_path / "full"), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == (
        "items: part 4, full 9 — DIFFERENT ITEM SETS (4 in common): each run's numbers are over its own items, "
        "not comparable item for item"
    )
    text = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8").splitlines()
    assert text[0] == "# Comparison: part (4 items) vs full (9 items)"
    assert text[2] == f"**{printed[1]}**"
    # per task: charge and term cover the same items in both runs (unmarked), article and verdict do not
    article = text.index(f"## {R.TASK_TITLES['article']}")
    assert text[article + 2] == "**DIFFERENT ITEM SETS (0 in common): not comparable item for item**"
    charge = text.index(f"## {R.TASK_TITLES['charge']}")
    assert text[charge + 2].startswith("| metric |")
    assert "DIFFERENT ITEM SETS (0 in common)" in suptitle(figures["compare_article.png"])
    assert suptitle(figures["compare_charge.png"]) == "charge prediction"
    ticks = [t.get_text() for t in figures["compare_term.png"].axes[0].get_xticklabels()]
    assert ticks == ["part\n2 items", "full\n3 items"]  # each run's own term items under its bars


def test_compare_item_sets_without_scores_or_with_a_bad_line(data_path, tmp_path, monkeypatch, caplog):
    """No scores.jsonl: equal counts are "not checked", unequal ones differ; a broken scores.jsonl line exits 2."""
    from recipes.evaluation.report import item_coverage, load_runs

    pred = write_predictions(tmp_path / "p.jsonl")
    for name in ("a", "b"):
        scored_report(tmp_path / name, name, "rules", data_path, pred, monkeypatch)
    (tmp_path / "b" / "scores.jsonl").unlink()
    dirs = [tmp_path / "a", tmp_path / "b"]
    runs, names = load_runs(dirs)
    coverage = item_coverage(dirs, runs, names)
    assert (coverage.counts, coverage.same, coverage.common) == ((9, 9), None, None)
    assert coverage.line().endswith("item sets not checked (a report has no scores.jsonl)")
    runs[1]["overall"]["n_items"] = 25
    assert item_coverage(dirs, runs, names).same is False
    # the same indices from two --data files need not be the same rows: said, and marked on the plots
    runs, names = load_runs([tmp_path / "a", tmp_path / "a"])
    runs[1]["overall"]["data"] = "other/test.parquet"
    coverage = item_coverage([tmp_path / "a", tmp_path / "a"], runs, names)
    assert coverage.same is True and "different --data files" in coverage.line() and coverage.mark()
    (tmp_path / "b" / "scores.jsonl").write_text('{"data_source": "legal/charge", "index": 0}\n{oops\n')
    assert E.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")]) == 2
    assert f"{tmp_path / 'b' / 'scores.jsonl'} line 2" in caplog.text


def test_terminal_tables_use_readable_labels(data_path, tmp_path, monkeypatch):
    """Both recipes' compare tables name metrics with readable labels, never metrics.json keys."""
    from recipes.safety import report as SR

    pred = write_predictions(tmp_path / "p.jsonl")
    legal = scored_report(tmp_path / "base", "base", "judge", data_path, pred, monkeypatch)
    table = R.headline_table({"base": legal})
    labels = [line[len("verdict  ") :].split("  ")[0].strip() for line in table.splitlines()[1:]]
    assert "set F1 per item" in labels and "CAIL2018 official score (×100)" in labels
    assert not RAW_KEY.search(table), table
    safety = SR.headline_table({"base": {"safety": {"mae": {"overall": 1.0}, "format_rate": 1.0}}})
    assert "MAE, all dimensions (lower is better)" in safety and not RAW_KEY.search(safety), safety


def test_counts_and_official_rows_read_right():
    """Counts print as integers (a weighted count keeps its fraction); the official row's label follows the lists."""
    assert [R.fmt(v, "count") for v in (0.0, 3.0, 2.5, 1 / 3, None)] == ["0", "3", "2.5", "0.33", "—"]
    block = {"cail_score_official": 40.0, "cail_official_pred_outside": 0.0}
    full = "\n".join(R.task_table("charge", block, full_lists=True))
    partial = "\n".join(R.task_table("charge", block, full_lists=False))
    assert f"| {R.OFFICIAL_LABEL} (comparable with published results) | 40.00 |" in full
    assert f"| {R.OFFICIAL_LABEL} (NOT comparable: not the full contest lists) | 40.00 |" in partial
    assert "| predicted labels outside the lists (dropped, as the judger does) | 0 |" in partial


def test_charge_confusion_counts_what_the_metric_counts(monkeypatch, tmp_path):
    """An answer the reward scores −2 (gold 寻衅滋事罪, answer 聚众斗殴罪、寻衅滋事罪) is no hit on the diagonal."""
    import rewards.legal

    gold, answer = "寻衅滋事罪", "聚众斗殴罪、寻衅滋事罪"
    scored = asyncio.run(
        rewards.legal.compute_score("legal/charge", ans(answer), gold, {"charges": [gold]}, mode="rules")
    )
    assert scored["task_score"] == -2.0 and scored["acc"] == 0.0  # what the metric counted
    view = E.parse_prediction("charge", ans(answer))
    records = [
        {"task": "charge", "data_source": "legal/charge", "index": 0, "gold_labels": [gold],
         "pred_labels": view["charges"]},
        {"task": "charge", "data_source": "legal/charge", "index": 1, "gold_labels": ["聚众斗殴罪"],
         "pred_labels": ["聚众斗殴罪"]},  # exact: the one diagonal entry
        {"task": "charge", "data_source": "legal/charge", "index": 2, "gold_labels": [gold], "pred_labels": []},
    ]  # fmt: skip
    rows, cols, matrix = R.charge_confusion(records)
    assert rows == [gold, "聚众斗殴罪"]
    assert matrix[0] == [0.0, 1.0, 0.0, 0.0, 1.0]  # 寻衅滋事罪: under 聚众斗殴罪 (the wrong charge), and none
    assert matrix[1] == [0.0, 1.0, 0.0, 0.0, 0.0]
    diagonal = sum(matrix[i][i] for i in range(len(rows)))
    assert diagonal == sum(M.set_exact(r["gold_labels"], r["pred_labels"]) for r in records)  # = accuracy's count
    figures = capture_figures(monkeypatch)
    R.plot_charge_confusion(records, tmp_path / "c.png", font=None)
    drawn = figures["c.png"].axes[0].images[0].get_array()
    assert drawn.tolist() == matrix  # the heat map draws exactly these counts
    assert [t.get_text() for t in figures["c.png"].axes[0].get_xticklabels()] == [
        "C1", "C2", "other", "incomplete", "none"
    ]  # fmt: skip


# ------------------------------------------------------------------ cail_score_official over the contest's lists
def _observed_labels(sample: Path) -> tuple[set[str], set[int]]:
    """Charges and articles of every usable record of a CAIL file, read here independently of data.prepare."""
    from data.sources import SkipRecord
    from data.sources.cail2018 import parse_record

    charges, articles = set(), set()
    for no, line in enumerate(sample.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            case = parse_record(json.loads(line), f"x:{no}", scan=True)
        except (SkipRecord, json.JSONDecodeError):
            continue
        charges.update(case.charges)
        articles.update(case.articles)
    return charges, articles


def test_prepare_records_the_contest_label_lists(sample_test_parquet):
    """data.prepare --source cail2018 writes label_sets.json beside the parquet: every label of the usable records."""
    body = json.loads(sample_test_parquet.with_name("label_sets.json").read_text(encoding="utf-8"))
    charges, articles = _observed_labels(REPO / "data/samples/cail2018_sample.jsonl")
    assert set(body["charges"]) == charges and set(body["articles"]) == articles
    assert body["charges"] == sorted(body["charges"]) and body["inputs"] == ["cail2018_sample.jsonl"]


def test_official_score_uses_the_lists_beside_the_data(sample_test_parquet, tmp_path):
    """cail_score_official = the judger over label_sets.json; out-of-list guesses are dropped and counted."""
    rows, right = sample_predictions(sample_test_parquet, tmp_path / "pred.jsonl")
    out = tmp_path / "report"
    assert _run_main(sample_test_parquet, tmp_path / "pred.jsonl", out) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    charges, articles = _observed_labels(REPO / "data/samples/cail2018_sample.jsonl")
    lists = {"charge": set(E.canonical_charges(charges)), "article": articles}
    outsides = {}
    for task, field, wrong in (("charge", "charges", WRONG_CHARGES), ("article", "articles", WRONG_ARTICLES)):
        pairs = [(r, ok) for r, ok in zip(rows, right, strict=True) if r["data_source"] == f"legal/{task}"]
        golds = [set(r["extra_info"][field]) for r, _ in pairs]
        guesses = [g if ok else {next(w for w in wrong if w not in g)} for g, (_, ok) in zip(golds, pairs, strict=True)]
        if task == "charge":
            golds = [set(E.canonical_charges(g)) for g in golds]
            guesses = [set(E.canonical_charges(p)) for p in guesses]
        outside = outsides[task] = sum(len(p - lists[task]) for p in guesses)
        expected = M.cail_f1(golds, [p & lists[task] for p in guesses], labels=lists[task])["score"]
        block = metrics[task]
        assert block["cail_score_official"] == pytest.approx(expected, abs=1e-4)
        assert block["cail_official_labels"] == len(lists[task])
        assert block["cail_official_pred_outside"] == outside
        assert block["cail_official_note"] == ""
    assert outside > 0  # articles 1 and 2 are never CAIL labels: the judger cannot see them
    labels = metrics["overall"]["cail_labels"]
    assert labels["charges"] == len(lists["charge"]) and labels["full_lists"] is False
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "NOT comparable with published CAIL2018 results" in report
    official_rows = [line for line in report.splitlines() if line.startswith(f"| {R.OFFICIAL_LABEL}")]
    assert len(official_rows) == 2  # charge and article
    assert all("(NOT comparable: not the full contest lists)" in row for row in official_rows)
    assert "comparable)" not in report.replace("(NOT comparable: not the full contest lists)", "")
    # a count is an integer ("0", never "0.00"): articles 1 and 2 are outside the lists, no charge is
    outside_rows = [line for line in report.splitlines() if line.startswith("| predicted labels outside the lists")]
    assert [row.rsplit("|", 2)[-2].strip() for row in outside_rows] == [str(outsides[t]) for t in ("charge", "article")]
    assert outsides["charge"] == 0  # the count that read "0.00"


def test_official_score_is_null_with_a_reason(data_path, tmp_path):
    """No lists → null and the reason (never the vocabulary score); a gold outside --labels → null, label named."""
    pred = write_predictions(tmp_path / "p.jsonl")
    assert _run_main(data_path, pred, tmp_path / "none") == 0
    metrics = json.loads((tmp_path / "none" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["charge"]["cail_score_official"] is None and metrics["charge"]["cail_score_vocab"] is not None
    assert "label_sets.json not found" in metrics["charge"]["cail_official_note"]
    assert "not computed" in (tmp_path / "none" / "report.md").read_text(encoding="utf-8")
    labels = tmp_path / "lists.json"
    labels.write_text(json.dumps({"charges": ["盗窃"], "articles": [264, 67, 266]}, ensure_ascii=False))
    assert _run_main(data_path, pred, tmp_path / "short", "--labels", str(labels)) == 0
    metrics = json.loads((tmp_path / "short" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["charge"]["cail_score_official"] is None
    assert "诈骗罪" in metrics["charge"]["cail_official_note"]  # item 1's gold is not in the list
    # articles: golds 264, 67, 266 all listed; the prediction 第72条 is outside → dropped and counted
    assert metrics["article"]["cail_official_labels"] == 3 and metrics["article"]["cail_official_pred_outside"] == 1
    labels.write_text('{"charges": []}')
    assert _run_main(data_path, pred, tmp_path / "bad", "--labels", str(labels)) == 2


# ------------------------------------------------------------------ issue 29: --data DIR, wrong types, the summary


def test_data_directory_is_read_as_its_test_parquet(sample_test_parquet, tmp_path):
    """--data DIR (what data.prepare --output names) scores DIR/test.parquet, with the lists beside it."""
    sample_predictions(sample_test_parquet, tmp_path / "pred.jsonl")
    common = ["--predictions", str(tmp_path / "pred.jsonl"), "--mode", "rules", "--name", "run"]
    assert E.main(["--data", str(sample_test_parquet), *common, "--out", str(tmp_path / "file")]) == 0
    assert E.main(["--data", str(sample_test_parquet.parent), *common, "--out", str(tmp_path / "dir")]) == 0
    by_file, by_dir = (json.loads((tmp_path / d / "metrics.json").read_text("utf-8")) for d in ("file", "dir"))
    assert by_dir["overall"]["data"] == str(sample_test_parquet)
    assert by_dir == by_file


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("empty_dir", "is a directory without test.parquet — give the prepared test file"),
        ("label_sets.json", "not a readable parquet file"),
    ],
)
def test_data_that_is_not_a_test_file_is_one_line_and_exit_2(sample_test_parquet, tmp_path, data, message):
    """A directory without test.parquet, or a file that is not parquet: one line on stderr, exit 2, no traceback."""
    if data == "empty_dir":
        target = tmp_path / "empty"
        target.mkdir()
    else:
        target = sample_test_parquet.parent / data
    pred = write_predictions(tmp_path / "p.jsonl")
    proc = subprocess.run(
        [sys.executable, "-m", "recipes.evaluate", "--data", str(target), "--predictions", str(pred),
         "--out", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert " ERROR " in line and message in line and str(target) in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("obj", "reason", "detail"),
    [
        ({"index": "4", "response": "x"}, "wrong_type", "'index' must be an int, got '4' — write \"index\": 4"),
        ({"index": 4.0, "response": "x"}, "wrong_type", "'index' must be an int, got 4.0"),
        ({"index": True, "response": "x"}, "wrong_type", "'index' must be an int, got True"),
        ({"index": [4], "response": "x"}, "wrong_type", "'index' must be an int, got [4]"),
        ({"index": 4, "response": 7}, "wrong_type", "'response' must be a string, got int"),
        ({"index": 4, "response": ["x"]}, "wrong_type", "'response' must be a string, got list"),
        ({"response": "x"}, "missing_field", "no 'index' (required: int)"),
        ({"index": None, "response": "x"}, "missing_field", "no 'index' (required: int)"),
        ({"index": 4}, "missing_field", "no 'response' (required: str)"),
    ],
)
def test_a_field_of_the_wrong_type_is_wrong_type_not_missing(data_path, tmp_path, obj, reason, detail):
    """A string index ("4") is a wrong type, said so with the fix; only an absent or null field is missing_field."""
    pred = tmp_path / "p.jsonl"
    pred.write_text(_line(0, ans("盗窃罪")) + "\n" + json.dumps(obj) + "\n", encoding="utf-8")
    loaded = E.load_predictions(pred, E.load_data(data_path))
    assert dict(loaded.skipped) == {reason: 1}
    assert loaded.issues == [{"line": 2, "reason": reason, "detail": detail}]
    with pytest.raises(E.EvaluationInputError, match=rf"line 2: {reason}: "):
        E.load_predictions(pred, E.load_data(data_path), strict=True)


def test_skipped_lines_are_one_warning_line_naming_where_they_are_listed(data_path, tmp_path, caplog):
    """The console gets one WARNING: how many lines were skipped, for which reasons, and where the report lists them."""
    pred = write_predictions(tmp_path / "p.jsonl", [*BAD_LINES, json.dumps({"index": "4", "response": "x"})])
    out = tmp_path / "out"
    with caplog.at_level("INFO"):
        assert _run_main(data_path, pred, out) == 0
    warnings = [r for r in caplog.records if r.levelno >= 30]
    assert [(r.levelname, r.name) for r in warnings] == [("WARNING", "recipes.evaluation.evaluate")], [
        r.getMessage() for r in warnings
    ]
    assert warnings[0].getMessage() == (
        "skipped 6 of 21 predictions line(s) (data_source_mismatch=1, malformed_json=2, missing_field=1, "
        f"unknown_index=1, wrong_type=1); listed by line in {out / 'metrics.json'} (overall.issues) and "
        f"{out / 'report.md'} (Input problems)"
    )
    overall = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["overall"]
    assert overall["skipped_total"] == 6 and {i["line"] for i in overall["issues"]} >= {13, 15, 16, 18, 19, 21}
