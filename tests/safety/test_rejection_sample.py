"""Rejection sampling without vLLM: selection and report arithmetic on hand-made tables, and a whole round of
`python -m recipes.safety.rejection_sample --samples` on chosen answers whose rewards follow from the reward's rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.prompt import gold_response
from data.sources.safety import ROW_SCHEMA, build_rows, parse_record
from recipes.safety.rejection_sample import main
from recipes.safety.round_report import (
    CollapseLimits,
    collapse_warnings,
    distribution,
    render_markdown,
    round_summary,
    total_variation,
)
from recipes.safety.selection import Scored, answer_key, meaning_key, saturated_texts, select

REPO = Path(__file__).resolve().parents[2]


def _a(text_id: int, sample: int, response: str, score: float) -> Scored:
    return Scored(text_id=text_id, sample=sample, response=response, score=score)


# -------------------------------------------------------------------------------------------------- selection
_R_SCORES = {**dict.fromkeys(DIMENSIONS, 100), DIMENSIONS[0]: 30}
_R_REASONING = "文本对普通茶包作医疗功效宣传，属于虚假广告。"
RENDERINGS = [
    gold_response(_R_SCORES, _R_REASONING),
    gold_response(_R_SCORES, _R_REASONING.replace("茶包", "茶\u200b包")),  # a zero-width space
    "<reasoning>"
    + _R_REASONING
    + "</reasoning>\n<answer>"
    + json.dumps(dict(reversed(_R_SCORES.items())), ensure_ascii=False)
    + "</answer>",  # the keys in another order
    "<reasoning>"
    + _R_REASONING
    + "</reasoning>\n<answer>"
    + json.dumps({k: str(v) for k, v in _R_SCORES.items()}, ensure_ascii=False)
    + "</answer>",  # "100", not 100
    gold_response(_R_SCORES, _R_REASONING.rstrip("。")),  # no trailing 。
    "<reasoning>"
    + _R_REASONING
    + "</reasoning>\n<answer>\n"
    + json.dumps(_R_SCORES, ensure_ascii=False, indent=2)
    + "\n</answer>",  # indented JSON
    "<reasoning>"
    + _R_REASONING
    + "</reasoning>\n<answer>```json\n"
    + json.dumps(_R_SCORES, ensure_ascii=False)
    + "\n```</answer>",  # in a code fence
    gold_response(_R_SCORES, _R_REASONING.replace("，", ",")),  # a half-width comma
]
"""Eight renderings of one answer: the same nine scores and the same reasoning."""

SELECT_CASES = [
    pytest.param(
        [_a(0, 0, "a", 1.0), _a(0, 1, "b", 4.0), _a(0, 2, "c", 3.0), _a(0, 3, "d", 2.9)],
        3.0, 2, [(0, 1), (0, 2)], (2, 0, 0, 0),
        id="best-first-and-threshold-is-inclusive",
    ),
    pytest.param(
        [_a(0, 0, "x y", 5.0), _a(0, 1, " x \n  y ", 5.0), _a(0, 2, "ｘ y", 4.0), _a(0, 3, "z", 4.5)],
        0.0, 3, [(0, 0), (0, 3)], (0, 0, 2, 0),
        id="whitespace-and-full-width-variants-are-duplicates",
    ),
    pytest.param(
        [_a(0, k, f"r{k}", 4.0) for k in range(5)],
        3.0, 2, [(0, 0), (0, 1)], (0, 0, 0, 3),
        id="cap-per-text-ties-by-sample",
    ),
    pytest.param(
        [_a(1, 0, "same", 4.0), _a(0, 0, "same", 4.0), _a(1, 1, "other", 4.5)],
        3.0, 1, [(0, 0), (1, 1)], (0, 0, 0, 1),
        id="the-same-answer-for-two-texts-is-no-duplicate",
    ),
    pytest.param(
        [_a(0, 0, "a", math.nan), _a(0, 1, "b", -5.0), _a(0, 2, "c", -4.0)],
        -4.0, 2, [(0, 2)], (2, 0, 0, 0),
        id="nan-never-passes",
    ),
    pytest.param(
        [_a(0, 0, "", 5.0), _a(0, 1, " \n\u3000", 5.0), _a(0, 2, "a", 1.0)],
        -10.0, 2, [(0, 2)], (0, 2, 0, 0),
        id="empty-answers-are-never-kept",
    ),
    pytest.param([], 3.0, 2, [], (0, 0, 0, 0), id="nothing-in"),
    pytest.param(
        [_a(0, k, r, 5.0) for k, r in enumerate(RENDERINGS)], 3.0, 2, [(0, 0)], (0, 0, 7, 0),
        id="eight-renderings-of-one-answer-are-one",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("answers", "threshold", "keep", "kept", "dropped"), SELECT_CASES)
def test_select(
    answers: list[Scored], threshold: float, keep: int, kept: list[tuple[int, int]], dropped: tuple
) -> None:
    """Kept (text, sample) in text order, best first; drops counted as (below threshold, empty, duplicate, over cap);
    every answer is counted exactly once."""
    got = select(answers, threshold, keep)
    assert [(a.text_id, a.sample) for a in got.kept] == kept
    assert (got.below_threshold, got.empty, got.duplicates, got.over_cap) == dropped
    assert got.total == len(answers)


def test_select_refuses_keep_below_one() -> None:
    """keep 0 would keep nothing by construction: an error, not an empty round."""
    with pytest.raises(ValueError, match="keep must be >= 1"):
        select([_a(0, 0, "a", 1.0)], 0.0, 0)


def test_answer_key_is_bounded_and_total() -> None:
    """A 1 MB answer is cut before normalizing; lone surrogates become U+FFFD instead of raising."""
    assert len(answer_key("x" * 1_000_000)) <= 20_000
    key = answer_key("a\ud800b")
    assert key.encode("utf-8") and key.startswith("a\ufffd") and key.endswith("b")


def test_meaning_key_is_bounded_and_total() -> None:
    """1 MB answers, lone surrogates and a block-less text give a key quickly and never raise."""
    huge = "<reasoning>" + "理由。" * 400_000 + "</reasoning><answer>" + "{" * 100_000 + "</answer>"
    for text in (huge, "a\ud800b", "", "<answer>" * 50_000, "x" * 1_000_000):
        key = meaning_key(text)
        assert isinstance(key, tuple) and hash(key) is not None
    assert meaning_key("乱 码") == meaning_key("乱码。") != meaning_key("其他")


def test_saturated_texts() -> None:
    """A text is saturated only when every one of its answers passes."""
    answers = [_a(0, 0, "a", 4.0), _a(0, 1, "b", 3.0), _a(1, 0, "a", 4.0), _a(1, 1, "b", 2.0), _a(2, 0, "c", math.nan)]
    assert saturated_texts(answers, 3.0) == {0}


# ----------------------------------------------------------------------------------------------------- report
def test_distribution_and_total_variation_by_hand() -> None:
    """Mean, violated share (< 60) and bucket shares of a hand-made column; TV of two bucket tables."""
    d = distribution([0, 59, 60, 95, 100, 100])
    assert d == {
        "count": 6,
        "mean": pytest.approx(414 / 6),
        "violated_share": pytest.approx(2 / 6),
        "buckets": pytest.approx({"0-59": 2 / 6, "60-89": 1 / 6, "90-99": 1 / 6, "100": 2 / 6}),
    }
    assert distribution([]) is None
    p = {"0-59": 0.5, "60-89": 0.0, "90-99": 0.0, "100": 0.5}
    q = {"0-59": 0.0, "60-89": 0.25, "90-99": 0.0, "100": 0.75}
    assert total_variation(p, q) == pytest.approx(0.5)
    assert total_variation(p, p) == 0.0


def _gold(**low: int) -> dict[str, int]:
    scores = dict.fromkeys(DIMENSIONS, 100)
    scores.update({DIMENSIONS[int(k[1:])]: v for k, v in low.items()})
    return scores


def _answer(scores: dict[str, int]) -> str:
    return gold_response(scores, "理由")


def test_round_summary_by_hand() -> None:
    """Two texts (one violating dimension 0, one clean); kept answers chosen so every number is known."""
    golds = [_gold(d0=30), _gold()]
    answers = [
        _a(0, 0, _answer(_gold(d0=30)), 5.0),
        _a(0, 1, "乱码", -4.0),
        _a(1, 0, _answer(_gold()), 5.0),
        _a(1, 1, _answer(_gold()), 4.0),  # same text: a duplicate
        _a(1, 2, _answer(_gold(d0=90)), 3.0),
        _a(1, 3, "乱码", -4.0),
    ]
    selection = select(answers, threshold=3.0, keep=2)
    s = round_summary(golds, answers, selection)
    assert (s["texts"], s["generated"], s["kept"], s["texts_with_kept"]) == (2, 6, 3, 2)
    assert s["dropped"] == {"below_threshold": 2, "empty": 0, "duplicate": 1, "over_cap": 0}
    assert s["kept_share"] == pytest.approx(0.5) and s["text_coverage"] == 1.0
    assert s["reward"]["mean_generated"] == pytest.approx(9.0 / 6)
    assert s["reward"]["mean_kept"] == pytest.approx(13.0 / 3)
    assert s["reward"]["delta"] == pytest.approx(13.0 / 3 - 1.5)
    # distinct: 乱码 twice, the clean answer twice -> 4 of 6; kept score vectors: (30,...), (100,...), (90,...)
    assert s["distinct_answer_ratio"] == {"generated": pytest.approx(4 / 6), "kept": 1.0}
    assert s["clean_share"] == {"gold": 0.5, "kept": pytest.approx(2 / 3)}
    d0 = s["dimensions"][DIMENSIONS[0]]
    assert d0["gold"]["buckets"] == {"0-59": 0.5, "60-89": 0.0, "90-99": 0.0, "100": 0.5}
    assert d0["kept"]["buckets"] == pytest.approx({"0-59": 1 / 3, "60-89": 0.0, "90-99": 1 / 3, "100": 1 / 3})
    assert d0["kept"]["mean"] == pytest.approx(220 / 3)
    assert d0["tv_distance"] == pytest.approx(1 / 3)
    assert s["dimensions"][DIMENSIONS[1]]["tv_distance"] == 0.0
    assert s["warnings"] == ["kept scores on 商业违规 drift from the gold distribution (total variation 0.33 > 0.25)"]
    assert s["distribution_line"].startswith("Kept 50% of the answers from 100% of the texts; reward 1.50 -> 4.33")
    assert "WARNING, model-collapse risk" in s["distribution_line"]
    md = render_markdown(s)
    assert s["distribution_line"] in md and "| 商业违规 | 65.0 | 73.3 | 50% | 33% |" in md


def test_renderings_count_as_one_distinct_answer() -> None:
    """round.json's distinct-answer ratio counts what answers mean: eight renderings of one answer are 1 of 8."""
    answers = [_a(0, k, r, 5.0) for k, r in enumerate(RENDERINGS)]
    summary = round_summary([_R_SCORES], answers, select(answers, 3.0, 2))
    assert summary["distinct_answer_ratio"]["generated"] == pytest.approx(1 / 8)
    assert summary["kept"] == 1


def _never_flag(text_id: int, sample: int = 0, score: float = 4.0) -> Scored:
    return _a(text_id, sample, _answer(_gold()), score)


@pytest.mark.parametrize(
    ("golds", "answers", "recall", "vectors", "needles"),
    [
        pytest.param(
            [_gold(d0=30), _gold(d1=40, d2=20), _gold(), _gold(d3=90)],
            [_never_flag(i) for i in range(4)],
            0.0, {"kept": 1, "gold": 4, "ratio": 0.25},
            ["flag 0% of the violations", "1 distinct score vectors for 4 distinct gold ones"],
            id="never-flag-everywhere",
        ),
        pytest.param(
            [_gold(d0=30), _gold(d1=40), _gold(), _gold(d3=90)],
            [_never_flag(2), _never_flag(3)],
            None, {"kept": 1, "gold": 2, "ratio": 0.5},
            ["no kept answer is for one of the 2 texts with a violation"],
            id="violations-dropped-clean-kept",
        ),
        pytest.param(
            [_gold(d0=30), _gold(d1=40), _gold()],
            [_a(0, 0, _answer(_gold(d0=30)), 5.0), _a(1, 0, _answer(_gold(d1=70)), 4.0), _never_flag(2)],
            0.5, {"kept": 3, "gold": 3, "ratio": 1.0},
            [],
            id="half-the-violations-flagged-is-no-collapse",
        ),
    ],
)  # fmt: skip
def test_collapse_sees_a_never_flag_round(
    golds: list[dict], answers: list[Scored], recall: float | None, vectors: dict, needles: list[str]
) -> None:
    """The kept answers' violation recall against the gold and their distinct score vectors (against the gold's of
    the same texts) are in the summary; a never-flag kept set is a collapse, named in the warnings."""
    s = round_summary(golds, answers, select(answers, 3.0, 2))
    assert s["kept_violation_recall"] == (pytest.approx(recall) if recall is not None else None)
    assert s["score_vectors"] == pytest.approx(vectors)
    assert len(s["collapse"]) == len(needles)
    for needle, sentence in zip(needles, s["collapse"], strict=True):
        assert needle in sentence
        assert sentence in s["warnings"] and sentence in s["distribution_line"]
    assert "| kept answers' violation recall (gold violated keys flagged) |" in render_markdown(s)


@pytest.mark.parametrize(
    ("summary_changes", "needle"),
    [
        ({"kept": 0}, "nothing was kept"),
        ({"text_coverage": 0.2}, "only 20% of the texts kept an answer"),
        ({"distinct_answer_ratio": {"generated": 0.3, "kept": 1.0}}, "distinct answers are 30% of the generated"),
    ],
)
def test_collapse_warnings(summary_changes: dict, needle: str) -> None:
    """Each limit crossed gives its sentence; within the limits there is none."""
    base = {
        "kept": 5,
        "text_coverage": 0.9,
        "distinct_answer_ratio": {"generated": 0.9, "kept": 1.0},
        "dimensions": {k: {"tv_distance": 0.1} for k in DIMENSIONS},
    }
    assert collapse_warnings(base, CollapseLimits()) == []
    got = collapse_warnings({**base, **summary_changes}, CollapseLimits())
    assert len(got) == 1 and needle in got[0]


# ------------------------------------------------------------------------------------------- the whole round
# Four texts with their gold scores (dimension index -> score, the rest 100).
GOLDS = [{0: 30}, {7: 50, 8: 40}, {}, {6: 70, **{i: 95 for i in (0, 1, 2, 3, 4, 5, 7, 8)}}]
REASONING = ["含有违规广告。", "夸大疗效并诱导购买。", "普通的营业通知。", "提到敏感词但无恶意。"]
# rewards/safety.py defaults (issue 23): format 1, keys 1, closeness 1 x (mean of 1 - 2|gap|/100), detection 1 x
# (1 - missed/violated - wrong/clean), reasoning 1 (n-gram, ranked against the four gold reasonings of --data).
FIVE = 5.0  # the gold answer: every part at its maximum
PERTURBED = 1 + 1 + (8 + 0.8) / 9 + 1 + 1  # one key 10 points off (no violation crosses 60), the eight others exact
NONSENSE_VIOLATED = -1 - 1 - 1 - 1 + 0  # no format, no keys, every key unscored: a violation missed, clean keys wrong
NONSENSE_CLEAN = -1 - 1 - 1 + 0 + 0  # the same for a clean text: its nine clean keys all wrong, detection 0


def _scores(i: int) -> dict[str, int]:
    return {k: GOLDS[i].get(j, 100) for j, k in enumerate(DIMENSIONS)}


def _off(scores: dict[str, int], dim: int) -> dict[str, int]:
    key = DIMENSIONS[dim]
    return {**scores, key: scores[key] - 10 if scores[key] >= 10 else scores[key] + 10}


def _samples(i: int) -> list[tuple[str, float]]:
    gold = gold_response(_scores(i), REASONING[i])
    perturbed = gold_response(_off(_scores(i), 0), REASONING[i])
    other = gold_response(_off(_scores(i), 1), REASONING[i])
    return [
        [(gold, FIVE), (gold.replace("\n", "\n\n  "), FIVE), (perturbed, PERTURBED), ("乱码", NONSENSE_VIOLATED)],
        [(perturbed, PERTURBED), (gold, FIVE), (other, PERTURBED), (gold, FIVE)],
        [("乱码", NONSENSE_CLEAN)] * 4,
        [(gold, FIVE), (perturbed, PERTURBED), (gold, FIVE), (perturbed, PERTURBED)],
    ][i]


@pytest.fixture
def round_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A four-row safety GRPO parquet (data/sources/safety's own rows) and a samples.jsonl of chosen answers."""
    rows = []
    for i in range(len(GOLDS)):
        record = {"text": f"第{i}号待审文本。", "scores": _scores(i), "reasoning": REASONING[i]}
        rows += build_rows(parse_record(record, f"t.jsonl:{i + 1}"), ("score",), "chat", "train", i)
    data = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), data)
    samples = tmp_path / "samples.jsonl"
    with samples.open("w", encoding="utf-8") as handle:
        for i in range(len(GOLDS)):
            for k, (response, _) in enumerate(_samples(i)):
                handle.write(json.dumps({"row": i, "index": i, "response": response, "sample": k}) + "\n")
    return data, samples


def test_a_round_on_chosen_answers(round_inputs: tuple[Path, Path], tmp_path: Path) -> None:
    """Threshold 3, keep 2: the rewards are the reward's own (checked per answer), the kept answers and drops are
    the hand-worked ones, sft.parquet holds exactly the kept answers after the prompts, train.parquet the texts
    where some answer failed, and round.json's numbers follow from the table."""
    data, samples = round_inputs
    out = tmp_path / "round1"
    assert (
        main(["--samples", str(samples), "--data", str(data), "--out", str(out), "--threshold", "3", "--keep", "2"])
        == 0
    )
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    expected = [reward for i in range(len(GOLDS)) for _, reward in _samples(i)]
    assert [s["score"] for s in scores] == pytest.approx(expected)
    kept = [(s["row"], s["sample"]) for s in scores if s["kept"]]
    assert kept == [(0, 0), (0, 2), (1, 0), (1, 1), (3, 0), (3, 1)]

    r = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert (r["texts"], r["generated"], r["kept"], r["texts_with_kept"]) == (4, 16, 6, 3)
    assert r["dropped"] == {"below_threshold": 5, "empty": 0, "duplicate": 4, "over_cap": 1}
    assert r["kept_share"] == pytest.approx(6 / 16) and r["text_coverage"] == pytest.approx(3 / 4)
    assert r["reward"]["mean_generated"] == pytest.approx(sum(expected) / 16)
    assert r["reward"]["mean_kept"] == pytest.approx((FIVE + PERTURBED) / 2)
    assert r["distinct_answer_ratio"]["generated"] == pytest.approx(8 / 16)  # 乱码 is one answer for texts 0 and 2
    # texts 1 and 3: all four answers pass (saturated, SFT only); texts 0 and 2 go on to GRPO
    assert r["outputs"]["grpo"] == {"path": str(out / "train.parquet"), "rows": 2, "saturated_texts_left_out": 2}
    assert r["outputs"]["sft"]["rows"] == 6 and r["outputs"]["sft"]["from_base_sft"] == 0
    assert r["config"]["threshold"] == 3.0 and r["config"]["keep"] == 2
    assert r["reasoning_failed"] == 0
    gold_violated = sum(1 for i in range(4) if _scores(i)[DIMENSIONS[0]] < 60) / 4
    assert r["dimensions"][DIMENSIONS[0]]["gold"]["violated_share"] == gold_violated
    assert (
        (out / "round.md")
        .read_text(encoding="utf-8")
        .startswith("# Rejection-sampling round\n\n" + r["distribution_line"])
    )

    source = pq.read_table(data).to_pylist()
    sft = pq.read_table(out / "sft.parquet").to_pylist()
    by_answer = {(i, k): resp for i in range(4) for k, (resp, _) in enumerate(_samples(i))}
    in_selection_order = [(0, 0), (0, 2), (1, 1), (1, 0), (3, 0), (3, 1)]  # per text best first
    assert sorted(in_selection_order) == kept
    assert [row["messages"] for row in sft] == [
        [*source[i]["prompt"], {"role": "assistant", "content": by_answer[(i, k)]}] for i, k in in_selection_order
    ]
    assert [row["extra_info"]["index"] for row in sft] == list(range(6))
    grpo = pq.read_table(out / "train.parquet")
    assert grpo.schema.equals(ROW_SCHEMA)
    assert grpo.to_pylist() == [source[0], source[2]]


def test_base_sft_rows_come_first_and_the_file_loads_in_verl(
    round_inputs: tuple[Path, Path], tmp_path: Path, tiny_tokenizer
) -> None:
    """--base-sft: the previous SFT rows first (re-numbered), then the kept answers; verl's SFT dataset reads it."""
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from data.sft import SftRow, write_sft_parquet
    from recipes.launch.commands import compose_config

    data, samples = round_inputs
    base = tmp_path / "base_sft.parquet"
    write_sft_parquet([SftRow([{"role": "user", "content": "旧样本"}], "<reasoning>旧</reasoning>", "safety", 7)], base)
    out = tmp_path / "round2"
    argv = ["--samples", str(samples), "--data", str(data), "--out", str(out), "--keep", "1", "--base-sft", str(base)]
    assert main(argv) == 0
    rows = pq.read_table(out / "sft.parquet").to_pylist()
    assert rows[0]["messages"][0]["content"] == "旧样本"
    assert [r["extra_info"]["index"] for r in rows] == list(range(len(rows))) and len(rows) == 1 + 3
    cfg = compose_config("safety_sft", ["data.max_length=2048"]).data
    dataset = MultiTurnSFTDataset(str(out / "sft.parquet"), tiny_tokenizer, cfg)
    assert len(dataset) == len(rows)
    item = dataset[1]
    trained = tiny_tokenizer.decode(item["input_ids"][item["loss_mask"].bool()].tolist())
    assert trained == rows[1]["messages"][-1]["content"] + "<|im_end|>\n"


def test_nothing_kept_says_so(round_inputs: tuple[Path, Path], tmp_path: Path) -> None:
    """A threshold above the maximum keeps nothing: empty sft.parquet, every row for GRPO, the warning in round.md."""
    data, samples = round_inputs
    out = tmp_path / "none"
    assert main(["--samples", str(samples), "--data", str(data), "--out", str(out), "--threshold", "5.5"]) == 0
    r = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert r["kept"] == 0 and r["outputs"]["sft"]["rows"] == 0 and r["outputs"]["grpo"]["rows"] == 4
    assert r["reward"]["mean_kept"] is None and r["warnings"][0].startswith("nothing was kept")
    assert "nothing was kept" in (out / "round.md").read_text(encoding="utf-8")


def _never_flag_samples(samples: Path) -> None:
    """Every answer for every text: all nine keys 100 (never a violation), with the text's gold reasoning."""
    with samples.open("w", encoding="utf-8") as handle:
        for i in range(len(GOLDS)):
            for k in range(4):
                response = gold_response(dict.fromkeys(DIMENSIONS, 100), REASONING[i])
                handle.write(json.dumps({"row": i, "index": i, "response": response, "sample": k}) + "\n")


def test_a_never_flag_round_is_refused_unless_kept_on_purpose(
    round_inputs: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """At threshold 3 the never-flag answers pass for every text: the kept set catches none of the 3 gold violations
    and holds 1 score vector for 4 gold ones. Exit 4, one ERROR line naming both, round.json / round.md / scores.jsonl
    written, no sft.parquet or train.parquet. --keep-collapsed writes them, the warning stays in the line."""
    data, samples = round_inputs
    _never_flag_samples(samples)
    out = tmp_path / "refused"
    argv = ["--samples", str(samples), "--data", str(data), "--out", str(out), "--threshold", "3"]
    with caplog.at_level("ERROR"):
        assert main(argv) == 4
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith("round refused, model collapse: the kept answers flag 0%")
    assert "1 distinct score vectors for 4 distinct gold ones" in errors[0] and "--keep-collapsed" in errors[0]
    r = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert r["refused"] and r["kept"] == 4 and r["kept_violation_recall"] == 0.0
    assert r["outputs"] == {"scores": str(out / "scores.jsonl")} and (out / "scores.jsonl").is_file()
    assert not (out / "sft.parquet").exists() and not (out / "train.parquet").exists()
    assert "WARNING, model-collapse risk" in (out / "round.md").read_text(encoding="utf-8")

    kept = tmp_path / "kept"
    assert main([*argv[:5], str(kept), "--threshold", "3", "--keep-collapsed"]) == 0
    r = json.loads((kept / "round.json").read_text(encoding="utf-8"))
    assert r["refused"] is None and r["config"]["keep_collapsed"] is True
    assert r["outputs"]["sft"]["rows"] == 4 and len(pq.read_table(kept / "sft.parquet")) == 4
    assert "flag 0% of the violations" in r["distribution_line"]


def test_at_the_default_threshold_no_never_flag_answer_is_kept_for_a_text_with_a_violation(tmp_path: Path) -> None:
    """The shipped sample, three answers per text (never flag, honest 5 points lower, honest 2 points higher), the
    configs/safety_rejection.yaml defaults: never-flag answers are kept only where the gold has no violation (before
    issue 23 they were kept for most texts with one), and the round is no collapse."""
    records = [json.loads(x) for x in (REPO / "data/samples/safety_sample.jsonl").read_text("utf-8").splitlines()]
    rows = []
    for i, record in enumerate(records):
        rows += build_rows(parse_record(record, f"sample:{i + 1}"), ("score",), "chat", "train", i)
    data = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), data)
    never = dict.fromkeys(DIMENSIONS, 100)
    samples = tmp_path / "samples.jsonl"
    with samples.open("w", encoding="utf-8") as handle:
        for i, record in enumerate(records):
            gold = record["scores"]
            answers = [
                never,
                {k: v - 5 if v >= 5 else v + 5 for k, v in gold.items()},
                {k: v + 2 if v <= 98 else v - 2 for k, v in gold.items()},
            ]
            for scores in answers:  # sample 0, 1, 2 in this order
                response = gold_response(scores, record["reasoning"])
                handle.write(json.dumps({"row": i, "response": response}, ensure_ascii=False) + "\n")
    out = tmp_path / "round"
    assert main(["--samples", str(samples), "--data", str(data), "--out", str(out)]) == 0
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    violated = {i for i, r in enumerate(records) if min(r["scores"].values()) < 60}
    kept_never_flag = {s["row"] for s in scores if s["kept"] and s["sample"] == 0}
    assert len(violated) >= 40 and not kept_never_flag & violated
    r = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert r["refused"] is None and r["collapse"] == [] and r["kept_violation_recall"] >= 0.9


def _legal_parquet(tmp_path: Path) -> Path:
    from data.prepare import main as prepare

    out = tmp_path / "legal"
    assert prepare(["--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl", "--output", str(out)]) == 0
    return out / "train.parquet"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ("legal_data", "row 0: data_source 'legal/charge' is not 'safety'"),
        ("bad_line", "samples.jsonl:2: not a JSON line"),
        ("bad_row", "samples.jsonl:1: field 'row' must be a row number of --data (0..3)"),
        ("bad_kwarg", "reward_kwargs (--reasoning-scorer / --reward-kwarg)"),
        ("judge_without_url", "reasoning_scorer=judge needs judge_base_url"),
        ("keep_zero", "selection.keep (--keep) must be an integer >= 1"),
        ("missing_data", "no such file"),
    ],
)
def test_bad_input_exits_2_naming_it(
    round_inputs: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, change: str, needle: str
) -> None:
    """Each bad input stops before any output, with exit 2 and a line naming the file, row/line or option."""
    data, samples = round_inputs
    argv = ["--samples", str(samples), "--data", str(data), "--out", str(tmp_path / "out")]
    if change == "legal_data":
        argv[3] = str(_legal_parquet(tmp_path))
    elif change == "bad_line":
        lines = samples.read_text(encoding="utf-8").splitlines()
        samples.write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n", encoding="utf-8")
    elif change == "bad_row":
        samples.write_text(json.dumps({"row": 9, "response": "x"}) + "\n", encoding="utf-8")
    elif change == "bad_kwarg":
        argv += ["--reward-kwarg", "no_such_option=1"]
    elif change == "judge_without_url":
        argv += ["--reasoning-scorer", "judge"]
    elif change == "keep_zero":
        argv += ["--keep", "0"]
    elif change == "missing_data":
        argv[3] = str(tmp_path / "nope.parquet")
    with caplog.at_level("ERROR"):
        assert main(argv) == 2
    assert needle in caplog.text
    assert not (tmp_path / "out" / "round.json").exists()


def test_judge_gone_stops_with_exit_3(
    round_inputs: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """reasoning_scorer=judge with a closed port and on_scorer_error=raise: exit 3 naming the first answer that
    could not be scored; no round is written."""
    from helpers.real_vllm import free_port

    data, samples = round_inputs
    argv = ["--samples", str(samples), "--data", str(data), "--out", str(tmp_path / "out"),
            "--reasoning-scorer", "judge", "--reward-kwarg", f"judge_base_url=http://127.0.0.1:{free_port()}/v1",
            "--reward-kwarg", "on_scorer_error=raise", "--reward-kwarg", "max_retries=0",
            "--reward-kwarg", "timeout_s=2"]  # fmt: skip
    with caplog.at_level("ERROR"):
        assert main(argv) == 3
    assert "scoring stopped (row " in caplog.text and "samples.jsonl" in caplog.text
    assert not (tmp_path / "out" / "round.json").exists()


def test_lora_adapter_needs_model(round_inputs: tuple[Path, Path], tmp_path: Path) -> None:
    """An adapter only means something when generating: with --samples it is a usage error (exit 2)."""
    data, samples = round_inputs
    with pytest.raises(SystemExit) as info:
        main(["--samples", str(samples), "--lora-adapter", str(tmp_path), "--data", str(data), "--out", str(tmp_path)])
    assert info.value.code == 2
