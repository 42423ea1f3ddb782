"""Judge audit (python -m recipes.legal.audit_judge): pairs, probes, and figures against a scripted judge by hand."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.figures import bar_texts, capture_figures, panel_titles
from helpers.judge_server import ScriptedJudgeServer
from matplotlib.collections import PathCollection

from data.domains.legal.terms import parse_term
from judge.client import JudgeConfig, close_judge_clients
from judge.prompts import fence_prediction, neutralize
from recipes.audit.report import compute_audit, write_outputs
from recipes.audit.run import AuditPair, AuditRecord
from recipes.legal.audit_judge import SPEC, ask_all, main
from recipes.legal.audit_pairs import DEFAULT_PROBES_PATH, build_pairs, load_probes, probe_pairs, select_pairs
from recipes.legal.audit_report import advice
from rewards.legal import compute_score

GOLD_RE = re.compile(r"【标准答案】\n(.*?)\n\n【预测答案】", re.S)
PRED_RE = re.compile(r"<<<预测开始>>>\n(.*?)\n<<<预测结束>>>", re.S)
VERDICT = "被告人张某犯盗窃罪，判处有期徒刑一年六个月，并处罚金人民币五千元。"

# Our own fictional gold: (data_source, ground_truth, charges, articles, term_kind, term_months, fine).
ROWS = [
    ("legal/charge", "盗窃罪、诈骗罪", ["盗窃罪", "诈骗罪"], [264, 266], "fixed", 30, 0),
    ("legal/charge", "贩卖毒品罪", ["贩卖毒品罪"], [347], "fixed", 36, 0),
    ("legal/article", "第67条、第264条", ["盗窃罪"], [67, 264], "fixed", 8, 0),
    ("legal/term", "有期徒刑三年六个月", ["抢劫罪"], [263], "fixed", 42, 0),
    ("legal/term", "无期徒刑", ["故意杀人罪"], [232], "life", 0, 0),
    ("legal/verdict", VERDICT, ["盗窃罪"], [264], "fixed", 18, 5000),
]


def write_data(path) -> str:
    """A prepared-parquet-shaped file with the rows above."""
    records = [
        {
            "data_source": ds,
            "prompt": [{"role": "user", "content": "案件事实：……"}],
            "ability": "legal",
            "reward_model": {"style": "rule", "ground_truth": gt},
            "extra_info": {
                "index": i,
                "charges": charges,
                "articles": articles,
                "term_kind": kind,
                "term_months": months,
                "fine": fine,
            },
        }
        for i, (ds, gt, charges, articles, kind, months, fine) in enumerate(ROWS)
    ]
    pq.write_table(pa.Table.from_pylist(records), path)
    return str(path)


def rows_of(path: str) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.fixture
def data(tmp_path) -> str:
    return write_data(tmp_path / "test.parquet")


# ---------------------------------------------------------------------------------------------------- pairs


def test_pairs_cover_every_kind_and_the_rules_agree(data):
    """Every kind the data allows is built; all kept pairs are graded by the rules as constructed."""
    pairs, skipped = build_pairs(rows_of(data))
    assert skipped == {"term_gold_without_months": 1}  # the life gold: training never asks the judge about it
    kinds = {(p.index, p.kind) for p in pairs}
    assert {k for i, k in kinds if i == 0} == {"exact", "no_zui", "subset", "superset", "disjoint"}
    assert {k for i, k in kinds if i == 1} == {"exact", "no_zui", "full_label", "superset", "disjoint"}
    assert {k for i, k in kinds if i == 2} == {
        "exact", "cn_numerals", "bare", "law_title", "subset", "superset", "disjoint"
    }  # fmt: skip
    assert {k for i, k in kinds if i == 3} == {
        "diff_0", "diff_3", "diff_12", "diff_36", "life_vs_fixed", "death_vs_fixed"
    }  # fmt: skip
    assert {k for i, k in kinds if i == 5} == {"exact", "term_off", "all_wrong"}
    by = {(p.index, p.kind): p for p in pairs}
    assert by[2, "cn_numerals"].prediction == "第六十七条、第二百六十四条"
    assert by[2, "bare"].prediction == "67、264"
    assert by[2, "law_title"].prediction == "《刑法》第67条、《刑法》第264条"
    assert by[1, "full_label"].prediction == "走私、贩卖、运输、制造毒品罪"
    assert by[0, "no_zui"].prediction == "盗窃、诈骗"
    for d in (0, 3, 12, 36):
        assert abs(parse_term(by[3, f"diff_{d}"].prediction).months - 42) == d
    # Wrong labels come from other cases' gold, never from the item's own.
    assert not {"盗窃罪", "诈骗罪"} & set(by[0, "disjoint"].prediction.split("、"))


def test_term_notations_all_appear_over_seeds(data):
    """Chinese numerals, 年/个月 with digits, and months only are all used."""
    seen = set()
    for seed in range(12):
        seen |= {p.variant for p in build_pairs(rows_of(data), seed=seed)[0] if p.task == "term" and p.variant}
    assert seen == {"cn", "arabic", "months"}


def test_select_pairs_round_robin_and_deterministic(data):
    """n pairs spread over (task, kind) in order; same seed, same pairs; n=0 → none."""
    pairs, _ = build_pairs(rows_of(data))
    first = select_pairs(pairs, 7, seed=3)
    assert [p.kind for p in first] == ["exact", "no_zui", "full_label", "subset", "superset", "disjoint", "exact"]
    assert [p.task for p in first] == ["charge"] * 6 + ["article"]
    assert select_pairs(pairs, 7, seed=3) == first
    assert len(select_pairs(pairs, 10_000)) == len(pairs)
    assert select_pairs(pairs, 0) == []


def test_probe_set_is_in_the_repo_and_documented():
    """The documented probes are there, with unique names; {question} becomes the task's question."""
    probes = {p.name: p.text for p in load_probes()}
    assert {"empty", "answer_label", "colon", "question", "correct_word", "grader_order"} <= set(probes)
    assert probes["empty"] == "" and probes["answer_label"] == "答案：" and probes["colon"] == "："
    assert "false positive" in DEFAULT_PROBES_PATH.read_text(encoding="utf-8")


def test_probe_pairs_fill_the_question(data):
    """Each probe for each task; the term probes use a month-count gold only."""
    pairs = probe_pairs(rows_of(data), load_probes())
    assert len(pairs) == 4 * len(load_probes())
    question = {p.task: p.prediction for p in pairs if p.kind == "question"}
    assert question["charge"] == "请根据下面的案件事实，判断被告人构成的罪名。"
    assert {p.index for p in pairs if p.task == "term"} == {3}


@pytest.mark.parametrize(
    ("text", "message"),
    [("probes: []\n", "non-empty list"), ("probes:\n  - {name: a, text: x}\n  - {name: a, text: y}\n", "unique")],
)
def test_bad_probe_file(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_probes(path)


# ---------------------------------------------------------------------------------------------------- end to end

# Chosen disagreements of the scripted judge, by (task, kind); every other pair gets its right answer.
WRONG = {
    ("charge", "superset"): "2",  # 2 pairs, right grade 1
    ("article", "cn_numerals"): "1",  # right grade 2
    ("article", "bare"): "我无法判断",  # unreadable
    ("verdict", "term_off"): "2",  # right grade 1
    ("term", "diff_3"): "误差：无法判断",  # unreadable
    ("term", "diff_36"): "误差：2年",  # 24 months: error -12
    ("term", "life_vs_fixed"): "误差：无法判断",  # passes
    ("term", "death_vs_fixed"): "误差：0个月",  # fails
    ("charge", "score_claim"): "2",  # probe false positive
    ("verdict", "grader_order"): "1",  # probe false positive
    ("term", "error_claim"): "误差：0个月",  # probe false positive
    ("article", "empty"): "2",  # probe false positive, but training never sends an empty answer to the judge
}
FAILING = ("article", "disjoint")  # HTTP 503 on every attempt


def scripted_judge(data: str) -> tuple[ScriptedJudgeServer, dict]:
    """A judge that answers each audit question by (task, kind) as chosen above."""
    rows = rows_of(data)
    pairs = build_pairs(rows)[0] + probe_pairs(rows, load_probes())
    by_question = {}
    for p in pairs:
        key = (neutralize(p.gold.text), fence_prediction(p.prediction))
        assert key not in by_question, key  # every question is distinct: no cache hit blurs the counts
        by_question[key] = p

    def find(request):
        user = "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")
        return by_question[(GOLD_RE.search(user).group(1), PRED_RE.search(user).group(1))]

    def reply(request):
        p = find(request)
        chosen = WRONG.get((p.task, p.kind))
        if chosen is not None:
            return chosen
        if p.probe:
            return "误差：无法判断" if p.task == "term" else "0"
        if p.task == "term":
            return f"误差：{p.expected_error}个月" if p.expected_error is not None else "误差：无法判断"
        return str(p.expected_grade)

    def fail(request, index):
        p = find(request)
        return 503 if (p.task, p.kind) == FAILING else None

    return ScriptedJudgeServer(reply=reply, fail=fail, model="judge-model"), by_question


def test_audit_figures_match_hand_computation(data, tmp_path, monkeypatch):
    """Accuracy, confusion, term MAE/bias, probes, failures and advice equal the values worked out by hand."""
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    server, questions = scripted_judge(data)
    out = tmp_path / "audit"
    with server:
        rc = main(
            ["--data", data, "--judge-base-url", server.base_url, "--judge-model", "judge-model", "--config", ""]
            + ["--n", "400", "--out", str(out)]
        )
        assert len(server.ok_requests) == len(questions) - 1  # one question fails, every other one answered once
    assert rc == 0
    audit = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    tasks = audit["tasks"]
    # charge: 10 pairs, the 2 supersets judged 2 → 8/10.
    assert tasks["charge"]["accuracy"] == 0.8
    assert tasks["charge"]["judge_rules_agreement"] == 0.8
    # the single-label superset (one right, one wrong) is wrong by the rules' precision rule: expected 0, not 1
    assert tasks["charge"]["confusion"]["counts"] == [[2, 0, 1, 0], [0, 1, 1, 0], [0, 0, 5, 0]]
    assert tasks["charge"]["kinds"]["superset"]["accuracy"] == 0.0
    assert tasks["charge"]["kinds"]["exact"]["accuracy"] == 1.0
    # article: 7 pairs, disjoint failed → 6 answered; cn_numerals judged 1, bare unreadable → 4/6.
    assert (tasks["article"]["n"], tasks["article"]["failures"], tasks["article"]["unreadable"]) == (7, 1, 1)
    assert tasks["article"]["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    assert tasks["article"]["confusion"]["counts"] == [[0, 0, 0, 0], [0, 2, 0, 0], [0, 1, 2, 1]]
    # term: diff_0 and diff_12 exact, diff_3 unreadable, diff_36 judged 24 (−12), life passes, death fails.
    term = tasks["term"]
    assert term["accuracy"] == 0.5 and term["exact_rate"] == 0.5
    assert (term["mae_months"], term["bias_months"], term["unreadable"]) == (4.0, -4.0, 2)
    assert term["kinds"]["diff_36"]["bias_months"] == -12.0
    assert term["kinds"]["life_vs_fixed"]["accuracy"] == 1.0
    assert term["kinds"]["death_vs_fixed"]["accuracy"] == 0.0
    # verdict: term_off judged 2 → 2/3.
    assert tasks["verdict"]["accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert tasks["verdict"]["confusion"]["counts"] == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
    # probes: 13 × 4 = 52, four false positives, three of them on answers training sends to the judge.
    probes = audit["probes"]
    assert (probes["n"], probes["false_positives"], probes["false_positives_reaching_training"]) == (52, 4, 3)
    assert probes["false_positive_rate"] == pytest.approx(4 / 52, abs=1e-6)
    assert tasks["article"]["probes"]["false_positives"] == 1
    assert tasks["article"]["probes"]["false_positives_reaching_training"] == 0
    assert probes["by_probe"]["score_claim"]["false_positive_tasks"] == ["charge"]
    assert probes["by_probe"]["error_claim"]["false_positive_tasks"] == ["term"]
    assert probes["by_probe"]["empty"]["reaches_judge_in_training"] is False
    assert probes["by_probe"]["colon"]["reaches_judge_in_training"] is True
    assert tasks["verdict"]["probes"]["false_positives"] == 1
    # failures and bookkeeping
    assert audit["failures"]["n"] == 1 and audit["failures"]["rate"] == pytest.approx(1 / 78, abs=1e-6)
    assert audit["n_questions"] == 78 and len(audit["records"]) == 78
    assert audit["latency"]["n"] == 77
    assert audit["run"]["skipped"] == {"term_gold_without_months": 1}
    # every task falls short, the verdict too → rules
    assert "trust the judge on no task" in audit["advice"] and "mode=rules" in audit["advice"]
    assert "MAE 4.0 months, bias -4.0" in audit["advice"]
    assert "article (67%)" in audit["advice"]  # its only probe false positive was the empty answer
    md = (out / "audit.md").read_text(encoding="utf-8")
    assert audit["advice"] in md and "| charge | superset | 2 | 0 | 0% |" in md
    for plot in ("accuracy.png", "confusion.png", "term_error.png", "probes.png", "latency.png"):
        assert (out / plot).stat().st_size > 1000


def _audit_dict(acc: dict, fp: dict | None = None, failure_rate: float = 0.0) -> dict:
    fp = fp or {}
    tasks = {
        t: {
            "accuracy": a,
            "answered": 10,
            "mae_months": 0.5 if t == "term" else None,
            "bias_months": 0.1 if t == "term" else None,
            "probes": {"false_positives": fp.get(t, 0), "false_positives_reaching_training": fp.get(t, 0)},
        }
        for t, a in acc.items()
    }
    return {
        "tasks": tasks,
        "probes": {"false_positives": sum(fp.values()), "answered": 52},
        "failures": {"rate": failure_rate},
    }


@pytest.mark.parametrize(
    ("acc", "fp", "failure_rate", "expected"),
    [
        ({"charge": 0.95, "article": 0.92, "term": 0.9, "verdict": 0.91}, {}, 0.0, "mode=judge fits"),
        ({"charge": 0.95, "article": 0.92, "term": 0.4, "verdict": 0.91}, {}, 0.0, "mode=hybrid (rules for term"),
        ({"charge": 0.95, "article": 0.92, "term": 0.9, "verdict": 0.95}, {"charge": 1}, 0.0, "rules for charge"),
        ({"charge": 0.95, "article": 0.92, "term": 0.9, "verdict": 0.5}, {}, 0.0, "mode=rules"),
        ({"charge": 0.95, "article": 0.92, "term": 0.9, "verdict": 0.95}, {}, 0.2, "fix the server first"),
    ],
)
def test_advice(acc, fp, failure_rate, expected):
    """One line: trusted tasks, doubtful ones with their numbers, and the mode that fits."""
    line = advice(_audit_dict(acc, fp, failure_rate))
    assert line.startswith("Advice: ") and "\n" not in line
    assert expected in line


# Hand-made records: (task, kind, right grade or true difference, judged values; None unreadable, "fail" failed)
PLOTTED = [
    ("charge", "exact", 2, [2, 2, 2, 2, 2]),
    ("charge", "superset", 1, [2, 2, 0]),  # 0%
    ("charge", "subset", 1, ["fail", "fail"]),  # nothing answered: n/a, not a 0% bar
    *[("term", f"diff_{d}", d, [d] * 12 + [d - 3, None]) for d in (0, 3, 12, 36)],  # 12 equal errors per difference
]


def plotted_records() -> list[AuditRecord]:
    """PLOTTED as audit records (the gold is never read by the figures)."""
    records = []
    for task, kind, right, judged in PLOTTED:
        for i, value in enumerate(judged):
            expected = {"expected_error": right} if task == "term" else {"expected_grade": right}
            pair = AuditPair(task, kind, i, SimpleNamespace(text="盗窃罪"), "x", **expected)
            failed = value == "fail"
            records.append(AuditRecord(pair, None if failed else value, "", 100.0 + i, failed, "", False))
    return records


def test_audit_plots_say_what_they_show(tmp_path, monkeypatch):
    """Titles on every plot; 0% and n/a bars carry their value; term errors never drawn on top of each other."""
    records = plotted_records()
    figures = capture_figures(monkeypatch)
    audit = compute_audit(records, SPEC)
    write_outputs(audit, records, tmp_path, SPEC)
    assert set(figures) == {"accuracy.png", "confusion.png", "term_error.png", "latency.png"}  # no probe, no probes.png
    assert all(panel_titles(fig) for fig in figures.values())
    acc = figures["accuracy.png"].axes[0]
    assert acc.get_title() == "judge accuracy per task / kind of pair (n: answered pairs)"
    shown = dict(zip([t.get_text() for t in acc.get_yticklabels()], bar_texts(acc), strict=False))
    assert shown["charge/exact (n=5)"] == "100%"
    assert shown["charge/superset (n=3)"] == "0%"  # a bar of width 0, shown by its value
    assert shown["charge/subset (n=0)"] == "n/a"  # every call failed: no accuracy, not 0%
    latency = figures["latency.png"].axes[0].get_title()
    assert latency.startswith(f"judge latency, answered uncached calls (n={audit['latency']['n']})")
    assert "p50" in latency and "p95" in latency
    # term_error.png: one column per true difference, every readable error a point, no two points at one place
    term = figures["term_error.png"].axes[0]
    points = [tuple(xy) for c in term.collections if isinstance(c, PathCollection) for xy in c.get_offsets().tolist()]
    truths = (0, 3, 12, 36)
    assert len(points) == len(truths) * 13 and len(set(points)) == len(points)
    for i, d in enumerate(truths):
        column = sorted(y for x, y in points if abs(x - i) < 0.5)
        assert column == sorted([d] * 12 + [d - 3])
    ticks = [t.get_text() for t in term.get_xticklabels()]
    assert ticks == [f"{d} months\n(n=13, 1 unreadable)" for d in truths]
    # audit.md: the confusion as a Markdown table, each kind's cells in words
    md = (tmp_path / "audit.md").read_text(encoding="utf-8")
    assert "| charge | superset | 3 | 0 | 0% | right 1 → judged 0: 1, judged 2: 2 |" in md
    table = [
        "### Confusion: charge",
        "",
        "| right grade ↓ / judged → | 0 | 1 | 2 | unreadable |",
        "| --- | --- | --- | --- | --- |",
        "| 0 | 0 | 0 | 0 | 0 |",
        "| 1 | 1 | 0 | 2 | 0 |",
        "| 2 | 0 | 0 | 5 | 0 |",
    ]
    assert "\n".join(table) in md
    assert "[[" not in md


def test_gone_judge_stops_with_one_line(data, tmp_path, monkeypatch, caplog):
    """Every call fails: after max_consecutive_failures the run stops with exit 1 and says where (config path)."""
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    with ScriptedJudgeServer(reply="2", fail=1.0, model="judge-model") as srv:
        rc = main(
            ["--data", data, "--judge-base-url", srv.base_url, "--judge-model", "judge-model"]
            + ["--config", "legal_grpo_smoke", "--out", str(tmp_path / "a")]
        )
    assert rc == 1
    audit_errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "recipes.legal.audit_judge"]
    errors = [r.getMessage() for r in audit_errors]
    assert len(errors) == 1 and "judge unavailable" in errors[0] and srv.base_url in errors[0]
    client_errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "judge.client"]
    assert len(client_errors) == 1  # the client says it once when it stops; nothing is sent after that
    assert not (tmp_path / "a" / "audit.json").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("flags", "server_kw", "needle"),
    [
        pytest.param(["--judge-model", "wrong", "--config", ""], {}, "does not serve model 'wrong'; it serves: "
                     "judge-model — pass --judge-model judge-model", id="wrong-model"),
        pytest.param(["--config", "legal_grpo"], {}, "does not serve model 'Qwen/Qwen2.5-7B-Instruct'; it serves: "
                     "judge-model", id="config-model-not-served"),
        pytest.param(["--judge-model", "judge-model", "--config", ""], {"api_key": "secret"},
                     "answered HTTP 401 — check the API key (JUDGE_API_KEY)", id="api-key-refused"),
        pytest.param(["--judge-model", "judge-model", "--config", ""], None,
                     "judge unavailable: nothing answers GET http://127.0.0.1:{port}/v1/models", id="down"),
    ],
)  # fmt: skip
def test_judge_checked_once_before_any_question(data, tmp_path, monkeypatch, caplog, flags, server_kw, needle):
    """One GET /v1/models first: a wrong or missing model, a refused key or a dead endpoint is exit 1 and one line
    (naming the models it serves), with no question sent and no warning before it (issue 29: ~95 WARNING lines)."""
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("JUDGE_MODEL", raising=False)
    monkeypatch.delenv("JUDGE_API_KEY", raising=False)
    server = ScriptedJudgeServer(reply="2", model="judge-model", **server_kw) if server_kw is not None else None
    port = server.start().port if server else _free_port()
    try:
        rc = main(["--data", data, "--judge-base-url", f"http://127.0.0.1:{port}/v1", *flags, "--out", str(tmp_path)])
    finally:
        if server:
            server.stop()
    assert rc == 1
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["ERROR"], [r.getMessage() for r in loud]
    assert needle.format(port=port) in loud[0].getMessage() and "\n" not in loud[0].getMessage()
    if server:
        assert [(r.method, r.path) for r in server.all_requests] == [("GET", "/v1/models")]
    assert not (tmp_path / "audit.json").exists()


def test_wrong_model_is_one_line_on_the_console(data, tmp_path):
    """The command as a user runs it: exit 1, one ERROR line on stderr, no traceback, no progress bar, no warning."""
    with ScriptedJudgeServer(reply="2", model="judge-model") as server:
        proc = subprocess.run(
            [sys.executable, "-m", "recipes.legal.audit_judge", "--data", data, "--judge-base-url", server.base_url,
             "--judge-model", "wrong", "--config", "", "--out", str(tmp_path / "a")],
            capture_output=True, text=True, timeout=120, env={**os.environ, "JUDGE_BASE_URL": "", "JUDGE_MODEL": ""},
        )  # fmt: skip
        chat = server.requests
    assert proc.returncode == 1, proc.stderr
    loud = [line for line in proc.stderr.splitlines() if " INFO " not in line]
    assert len(loud) == 1 and " ERROR recipes.legal.audit_judge: " in loud[0], proc.stderr
    assert "it serves: judge-model" in loud[0] and not chat


def test_bad_data_exits_2(tmp_path, monkeypatch):
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    rc = main(["--data", str(tmp_path / "missing.parquet"), "--judge-base-url", "http://127.0.0.1:27001/v1"]
              + ["--config", "", "--out", str(tmp_path / "o")])  # fmt: skip
    assert rc == 2


@pytest.mark.parametrize("task", ["charge", "term", "verdict"])
async def test_audit_asks_exactly_what_training_asks(data, task):
    """The audit's question for a pair is byte-identical to the one compute_score(mode=judge) sends in training."""
    rows = rows_of(data)
    pair = next(p for p in build_pairs(rows)[0] if p.task == task and p.kind != "exact")
    row = next(r for r in rows if r["extra_info"]["index"] == pair.index)
    reply = "误差：3个月" if task == "term" else "1"
    with ScriptedJudgeServer(reply=reply, model="judge-model") as srv:
        config = JudgeConfig(base_urls=(srv.base_url,), model="judge-model", max_retries=0, cache_size=0)
        (record,) = await ask_all([pair], config)
        await compute_score(
            row["data_source"],
            f"分析。</think><answer>{pair.prediction}</answer>",
            row["reward_model"]["ground_truth"],
            row["extra_info"],
            mode="judge",
            judge_base_url=srv.base_url,
            judge_model="judge-model",
            max_retries=0,
        )
        await close_judge_clients()
        audit_request, training_request = srv.ok_requests
    assert audit_request.json == training_request.json
    assert record.value == (3 if task == "term" else 1)
