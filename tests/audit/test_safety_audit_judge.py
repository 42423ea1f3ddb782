"""Safety judge audit (python -m recipes.safety.audit_judge): pairs, probes, and figures against a scripted judge."""

from __future__ import annotations

import json
import logging
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.judge_server import ScriptedJudgeServer

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.gold import Gold, ground_truth_json
from data.domains.safety.judge import JUDGE_PROMPTS_PATH
from data.domains.safety.prompt import build_prompt, gold_response
from judge.client import JudgeConfig, close_judge_clients
from judge.prompts import fence_prediction, neutralize
from recipes.audit import run as judge_audit
from recipes.audit.run import load_probes
from recipes.safety.audit_judge import SPEC, advice, main, reaches_judge
from recipes.safety.audit_pairs import build_pairs, differ_a_lot, probe_pairs, reformat, text_of
from rewards.safety import compute_score

GOLD_RE = re.compile(r"【标准理由】\n(.*?)\n\n【预测理由】", re.S)
PRED_RE = re.compile(r"<<<预测开始>>>\n(.*?)\n<<<预测结束>>>", re.S)

# Our own fictional rows: (text, scores below 100, gold reasoning).
BIAS = "带有偏见、仇恨、歧视或侮辱"
ROWS = [
    ("番茄炒蛋先炒鸡蛋再炒番茄。", {}, "文本介绍家常菜做法，内容正常，全部合规。"),  # 0 clean
    ("明天多云转晴。", {}, "文本内容正常"),  # 1 clean, no full-width punctuation: no reformatted pair
    ("听说全市明天停电三天。", {"虚假信息": 20}, "文本散布未经证实的停电消息，属于虚假信息。"),  # 2
    ("干这行的都是骗子。", {BIAS: 30, "敏感词": 70}, "文本以职业贬低他人，带有歧视，并有不文明用语。"),  # 3
    ("全场最低价，手慢无！", {"商业违规": 80}, "文本略有夸张的促销用语，属于边界情况。"),  # 4 borderline
    ("喝这个偏方就能停药。", {"虚假信息": 40, "诱导&&违法不良信息": 45}, "文本宣传偏方劝人停药，属虚假信息。"),  # 5
]


def _gold(low: dict, reasoning: str) -> Gold:
    return Gold(tuple((k, low.get(k, 100)) for k in DIMENSIONS), reasoning)


def write_data(path) -> str:
    """A prepared-parquet-shaped safety file with the rows above."""
    records = [
        {
            "data_source": "safety",
            "prompt": build_prompt(text),
            "ability": "safety",
            "reward_model": {"style": "rule", "ground_truth": ground_truth_json(_gold(low, reasoning))},
            "extra_info": {"index": i, "task": "score", "split": "test", "case_id": f"t:{i}", "violated": []},
        }
        for i, (text, low, reasoning) in enumerate(ROWS)
    ]
    pq.write_table(pa.Table.from_pylist(records), path)
    return str(path)


@pytest.fixture
def data(tmp_path) -> str:
    return write_data(tmp_path / "test.parquet")


def rows_of(path: str) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.fixture(autouse=True)
def _no_judge_env(monkeypatch):
    for name in ("JUDGE_BASE_URL", "JUDGE_MODEL", "JUDGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------------------------------- pairs


@pytest.mark.parametrize(
    ("a", "b", "far"),
    [
        ({}, {"虚假信息": 20}, True),  # clean against a serious problem
        ({}, {"虚假信息": 50}, True),  # 50 is half the scale away: serious
        ({}, {"虚假信息": 51}, False),  # not serious enough to be certain
        ({}, {}, False),  # two clean texts: same verdict, other reasons
        ({"虚假信息": 20}, {"敏感词": 30}, True),  # serious problems in different dimensions
        ({"虚假信息": 20}, {"虚假信息": 90, "敏感词": 30}, False),  # both flag 虚假信息: overlap of unknown size
        ({"虚假信息": 20}, {"商业违规": 80}, False),  # a borderline text's reasoning names a mild problem
    ],
)
def test_differ_a_lot(a, b, far):
    """Disjoint flagged dimensions, and every side that flags something has a score of 50 or less."""
    assert differ_a_lot(_gold(a, "甲。"), _gold(b, "乙。")) is far
    assert differ_a_lot(_gold(b, "乙。"), _gold(a, "甲。")) is far


def test_reformat_and_text_of():
    """Half-width punctuation, same words; the text under review is read back from the prompt."""
    assert reformat("文本散布消息，属于虚假信息。") == "文本散布消息, 属于虚假信息."
    assert reformat("文本内容正常") == "文本内容正常"
    assert text_of({"prompt": build_prompt("明天多云转晴。")}) == "明天多云转晴。"


def test_pairs_cover_every_kind_with_the_right_grade(data):
    """Every row gets the kinds its gold allows; wrong reasonings come from golds that differ a lot."""
    pairs, skipped = build_pairs(rows_of(data))
    assert skipped == {}
    kinds = {(p.index, p.kind): p for p in pairs}
    assert {k for i, k in kinds if i == 0} == {"exact", "reformatted", "clean_vs_violating"}
    assert {k for i, k in kinds if i == 1} == {"exact", "clean_vs_violating"}
    for i in (2, 3, 5):
        assert {k for j, k in kinds if j == i} == {
            "exact", "reformatted", "violating_vs_clean", "disjoint_violations", "superset"
        }  # fmt: skip
    assert {k for i, k in kinds if i == 4} == {"exact", "reformatted"}  # borderline: nothing else is certain
    grades = {p.kind: p.expected_grade for p in pairs}
    assert grades == {
        "exact": 2, "reformatted": 2, "clean_vs_violating": 0, "violating_vs_clean": 0,
        "disjoint_violations": 0, "superset": 1,
    }  # fmt: skip
    reasoning = {i: r for i, (_t, _l, r) in enumerate(ROWS)}
    assert kinds[2, "disjoint_violations"].prediction == reasoning[3]  # row 5 shares 虚假信息 with row 2
    assert kinds[2, "superset"].prediction == reasoning[2] + reasoning[3]
    assert kinds[3, "violating_vs_clean"].prediction in (reasoning[0], reasoning[1])
    assert kinds[0, "clean_vs_violating"].prediction in (reasoning[2], reasoning[3], reasoning[5])


def test_bad_gold_is_counted(tmp_path):
    """A row whose ground truth is not a safety gold is skipped with its reason."""
    path = write_data(tmp_path / "t.parquet")
    rows = rows_of(path)
    rows[4]["reward_model"]["ground_truth"] = "{}"
    pairs, skipped = build_pairs(rows)
    assert skipped == {"bad_gold": 1} and 4 not in {p.index for p in pairs}


def test_probes_use_the_shared_set_and_the_text(data):
    """Every shared probe once, against the golds in turn; {question} is the text under review."""
    probes = load_probes()
    pairs = probe_pairs(rows_of(data), probes)
    assert [p.kind for p in pairs] == [p.name for p in probes]
    question = next(p for p in pairs if p.kind == "question")
    assert question.prediction == ROWS[question.index][0]
    assert reaches_judge("：") and not reaches_judge("") and not reaches_judge("  \n")


# ---------------------------------------------------------------------------------------------------- end to end

WRONG = {
    "reformatted": "1",  # 5 pairs, right grade 2
    "superset": "2",  # 3 pairs, right grade 1
    "violating_vs_clean": "我无法判断",  # 3 pairs, unreadable
    "question": "1",  # probe false positive
    "grader_order": "2",  # probe false positive
    "empty": "2",  # probe false positive, but training never asks the judge about an empty reasoning
}
FAILING = "disjoint_violations"  # HTTP 503 on every attempt


def scripted_judge(data: str, wrong: dict, failing: str | None) -> tuple[ScriptedJudgeServer, dict]:
    """A judge that answers each audit question by its kind as chosen."""
    rows = rows_of(data)
    pairs = build_pairs(rows)[0] + probe_pairs(rows, load_probes())
    by_question = {}
    for p in pairs:
        key = (neutralize(p.gold.reasoning), fence_prediction(p.prediction))
        assert key not in by_question, key  # every question is distinct: no cache hit blurs the counts
        by_question[key] = p

    def find(request):
        user = request["messages"][-1]["content"]
        return by_question[(GOLD_RE.search(user).group(1), PRED_RE.search(user).group(1))]

    def reply(request):
        assert "内容安全审核评审员" in request["messages"][0]["content"]  # the safety wording, not the legal one
        p = find(request)
        return wrong.get(p.kind, "0" if p.probe else str(p.expected_grade))

    def fail(request, index):
        return 503 if find(request).kind == failing else None

    return ScriptedJudgeServer(reply=reply, fail=fail, model="judge-model"), by_question


def test_audit_figures_match_hand_computation(data, tmp_path):
    """Accuracy, confusion, kinds, probes, failures, latency count and advice equal the values worked out by hand."""
    server, questions = scripted_judge(data, WRONG, FAILING)
    out = tmp_path / "audit"
    with server:
        rc = main(
            ["--data", data, "--judge-base-url", server.base_url, "--judge-model", "judge-model", "--config", ""]
            + ["--n", "400", "--out", str(out)]
        )
        assert len(server.ok_requests) == len(questions) - 3  # the three disjoint pairs fail, the rest answer once
    assert rc == 0
    audit = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    block = audit["tasks"]["reasoning"]
    # 22 pairs: exact 6, reformatted 5, clean_vs_violating 2, violating_vs_clean 3, disjoint_violations 3, superset 3
    assert (block["n"], block["failures"], block["answered"], block["unreadable"]) == (22, 3, 19, 3)
    assert block["accuracy"] == pytest.approx(8 / 19, abs=1e-6)  # exact 6 + clean_vs_violating 2 right
    assert block["confusion"]["counts"] == [[2, 0, 0, 3], [0, 0, 3, 0], [0, 5, 6, 0]]
    kinds = block["kinds"]
    assert list(kinds) == [
        "exact", "reformatted", "clean_vs_violating", "violating_vs_clean", "disjoint_violations", "superset"
    ]  # fmt: skip
    assert (kinds["exact"]["accuracy"], kinds["clean_vs_violating"]["accuracy"]) == (1.0, 1.0)
    assert (kinds["reformatted"]["accuracy"], kinds["superset"]["accuracy"]) == (0.0, 0.0)
    assert kinds["violating_vs_clean"]["unreadable"] == 3 and kinds["violating_vs_clean"]["accuracy"] == 0.0
    assert (kinds["disjoint_violations"]["failures"], kinds["disjoint_violations"]["accuracy"]) == (3, None)
    probes = audit["probes"]
    assert (probes["n"], probes["false_positives"], probes["false_positives_reaching_training"]) == (13, 3, 2)
    assert probes["false_positive_rate"] == pytest.approx(3 / 13, abs=1e-6)
    assert probes["by_probe"]["question"]["false_positive_tasks"] == ["reasoning"]
    assert probes["by_probe"]["empty"]["reaches_judge_in_training"] is False
    assert block["probes"]["false_positives_reaching_training"] == 2
    assert audit["n_questions"] == 35 and len(audit["records"]) == 35
    assert audit["failures"]["n"] == 3 and audit["failures"]["rate"] == pytest.approx(3 / 35, abs=1e-6)
    assert audit["latency"]["n"] == 32
    assert audit["run"]["recipe"] == "safety" and audit["run"]["judge_prompts"] == str(JUDGE_PROMPTS_PATH)
    assert audit["advice"] == (
        "Advice: 9% of judge calls failed — fix the server first; do not trust the judge on the reasoning "
        "(42%, weakest on reformatted 0%, 2 probe(s) scored); probes 3/13 false positives → reasoning_scorer=embedding "
        "or ngram until a judge passes this audit."
    )
    record = next(r for r in audit["records"] if r["kind"] == "superset")
    assert record["gold"] in {r for _t, _l, r in ROWS} and record["expected_grade"] == 1 and record["judged"] == 2
    md = (out / "audit.md").read_text(encoding="utf-8")
    assert audit["advice"] in md and "| reasoning | superset | 3 | 0 | 0% | right 1 → judged 2: 3 |" in md
    # the confusion as a Markdown table, not a nested list (issue 29 item 11)
    table = md.split("### Confusion: reasoning\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert table == [
        "| right grade ↓ / judged → | 0 | 1 | 2 | unreadable |",
        "| --- | --- | --- | --- | --- |",
        "| 0 | 2 | 0 | 0 | 3 |",
        "| 1 | 0 | 0 | 3 | 0 |",
        "| 2 | 0 | 5 | 6 | 0 |",
    ]
    assert "[[" not in md
    assert audit["plots"] == ["accuracy.png", "confusion.png", "probes.png", "latency.png"]
    for plot in audit["plots"]:
        assert (out / plot).stat().st_size > 1000


def test_a_judge_that_gets_everything_right_is_trusted(data, tmp_path):
    """Every pair right and no probe scored: the advice says the judge fits."""
    server, _questions = scripted_judge(data, {}, None)
    with server:
        rc = main(["--data", data, "--judge-base-url", server.base_url, "--config", "", "--out", str(tmp_path / "a")])
    assert rc == 0
    audit = json.loads((tmp_path / "a" / "audit.json").read_text(encoding="utf-8"))
    assert audit["tasks"]["reasoning"]["accuracy"] == 1.0 and audit["probes"]["false_positives"] == 0
    assert audit["advice"] == (
        "Advice: trust the judge on the reasoning (100%); probes 0/13 false positives → reasoning_scorer=judge fits."
    )


def test_n_samples_evenly_over_kinds(data):
    """--n picks pairs round robin over the kinds, in report order."""
    pairs, _ = build_pairs(rows_of(data))
    order = [(t, k) for t in SPEC.tasks for k in SPEC.kinds[t]]
    first = judge_audit.select_pairs(pairs, 8, order, seed=1)
    assert [p.kind for p in first] == [*SPEC.kinds["reasoning"], "exact", "reformatted"]


def test_advice_without_answers():
    audit = {"tasks": {"reasoning": {"answered": 0}}, "probes": {}, "failures": {"rate": 1.0}}
    assert advice(audit) == "Advice: the judge answered no audit question — check the server before training."


def test_gone_judge_stops_with_one_line(data, tmp_path, caplog):
    """Every call fails (training config's settings): exit 1 and one line that names the judge."""
    with ScriptedJudgeServer(reply="2", fail=1.0, model="judge-model") as srv:
        rc = main(
            ["--data", data, "--judge-base-url", srv.base_url, "--judge-model", "judge-model"]
            + ["--config", "safety_grpo", "--out", str(tmp_path / "a")]
        )
    assert rc == 1
    errors = [
        r.getMessage() for r in caplog.records if r.levelname == "ERROR" and r.name == "recipes.safety.audit_judge"
    ]
    assert len(errors) == 1 and "judge unavailable" in errors[0] and srv.base_url in errors[0]
    assert not (tmp_path / "a" / "audit.json").exists()


@pytest.mark.parametrize("model", ["wrong", ""], ids=["wrong-model", "config-model"])
def test_model_not_served_stops_before_any_question(data, tmp_path, caplog, monkeypatch, model):
    """The shared check: one GET /v1/models, exit 1, one line naming the served models, no question, no warning."""
    monkeypatch.delenv("JUDGE_MODEL", raising=False)
    flags = ["--judge-model", model, "--config", ""] if model else ["--config", "safety_grpo"]
    with ScriptedJudgeServer(reply="2", model="judge-model") as srv:
        rc = main(["--data", data, "--judge-base-url", srv.base_url, *flags, "--out", str(tmp_path / "a")])
        requests = [(r.method, r.path) for r in srv.all_requests]
    assert rc == 1 and requests == [("GET", "/v1/models")]
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.levelname, r.name) for r in loud] == [("ERROR", "recipes.safety.audit_judge")]
    assert "it serves: judge-model — pass --judge-model judge-model" in loud[0].getMessage()


def test_legal_rows_are_refused(tmp_path):
    """A legal parquet given to the safety audit: exit 2 naming the row."""
    path = tmp_path / "legal.parquet"
    row = {"data_source": "legal/charge", "reward_model": {"ground_truth": "盗窃罪"}, "extra_info": {"index": 0}}
    pq.write_table(pa.Table.from_pylist([row]), path)
    rc = main(["--data", str(path), "--judge-base-url", "http://127.0.0.1:23998/v1", "--config", ""]
              + ["--out", str(tmp_path / "o")])  # fmt: skip
    assert rc == 2
    with pytest.raises(judge_audit.AuditInputError, match=r"row 0: data_source 'legal/charge' is not a safety row"):
        judge_audit.load_rows(path, "safety")


async def test_audit_asks_exactly_what_training_asks(data):
    """The audit's question for a pair is byte-identical to the one compute_score(reasoning_scorer=judge) sends."""
    rows = rows_of(data)
    pair = next(p for p in build_pairs(rows)[0] if p.kind == "superset")
    row = next(r for r in rows if r["extra_info"]["index"] == pair.index)
    with ScriptedJudgeServer(reply="1", model="judge-model") as srv:
        config = SPEC.judge_config({"judge_base_url": srv.base_url, "judge_model": "judge-model", "cache_size": 0})
        (record,) = await judge_audit.ask_all([pair], config, SPEC.ask)
        await compute_score(
            "safety",
            gold_response(pair.gold.score_map, pair.prediction),
            row["reward_model"]["ground_truth"],
            row["extra_info"],
            reasoning_scorer="judge",
            judge_base_url=srv.base_url,
            judge_model="judge-model",
        )
        await close_judge_clients()
        audit_request, training_request = srv.ok_requests
    assert audit_request.json == training_request.json
    assert record.value == 1
    assert isinstance(config, JudgeConfig) and config.prompts_path == str(JUDGE_PROMPTS_PATH)
