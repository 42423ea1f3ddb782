"""data.prepare end to end on the shipped fictional samples: CLI contract, accounting, split, schema, verl loading."""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
import subprocess
import sys
from collections import Counter

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from data.domains.legal.tasks import TASKS
from data.domains.legal.terms import Term, format_term
from data.prepare import BadRecordError, NoUsableDataError, PrepareConfig, main, prepare
from data.rows import ROW_SCHEMA

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
CAIL = str(SAMPLES / "cail2018_sample.jsonl")
CAIL_BAD = str(SAMPLES / "cail2018_bad.jsonl")
JUDG = str(SAMPLES / "judgments_sample.jsonl")
JUDG_BAD = str(SAMPLES / "judgments_bad.jsonl")
INPUTS = {"cail2018": (CAIL, CAIL_BAD), "judgments": (JUDG, JUDG_BAD)}


def _lines(path: str) -> int:
    """Number of lines in a file (what `read` must count)."""
    return len(pathlib.Path(path).read_bytes().splitlines())


def _rows(out: pathlib.Path, split: str) -> list[dict]:
    """All rows of one written split."""
    return pq.read_table(out / f"{split}.parquet").to_pylist()


def _fact(row: dict) -> str:
    """The facts part of a row's user prompt."""
    return row["prompt"][-1]["content"].split("案件事实：\n", 1)[1]


def _run(source: str, out: pathlib.Path, **kwargs) -> dict:
    """prepare() on the good + bad sample files of a source."""
    return prepare(PrepareConfig(source=source, inputs=INPUTS[source], output=str(out), **kwargs))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[pathlib.Path, dict]]:
    """Both sources prepared once with defaults (good + bad inputs), shared by the read-only tests."""
    result = {}
    for source in INPUTS:
        out = tmp_path_factory.mktemp(f"prep_{source}")
        result[source] = (out, _run(source, out))
    return result


# --- the CLI contract (subprocess) ---


@pytest.mark.parametrize(
    ("source", "extra", "expected_train", "expected_test"),
    [
        ("cail2018", ["--train-size", "40", "--test-size", "12", "--template", "chat"], 40, 12),
        ("judgments", ["--tasks", "charge,term", "--seed", "3"], 24, 6),
    ],
)
def test_cli_writes_parquet_stats_and_summary(tmp_path, source, extra, expected_train, expected_test):
    """`python -m data.prepare` writes train/test parquet + stats.json and prints a summary naming skip reasons."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "data.prepare", "--source", source, "--input", *INPUTS[source], "--output", str(out)]
    proc = subprocess.run(cmd + extra, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["items_total"] == {"train": expected_train, "test": expected_test}
    assert len(_rows(out, "train")) == expected_train and len(_rows(out, "test")) == expected_test
    read = sum(_lines(p) for p in INPUTS[source])
    assert f"read {read} records" in proc.stdout
    for reason, count in stats["skipped_by_reason"].items():
        assert f"{reason}={count}" in proc.stdout


def test_cli_strict_stops_at_first_bad_record_naming_file_and_line(tmp_path):
    """--strict: non-zero exit, error names the file and line of the first bad record, no parquet written."""
    cmd = [
        sys.executable,
        "-m",
        "data.prepare",
        "--source",
        "cail2018",
        "--input",
        CAIL,
        CAIL_BAD,
        "--output",
        str(tmp_path),
        "--strict",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "cail2018_bad.jsonl:1: malformed_json" in proc.stderr
    assert not (tmp_path / "train.parquet").exists()


# --- the same through the functions ---


@pytest.mark.parametrize(
    ("source", "path", "line", "reason"),
    [
        ("cail2018", CAIL_BAD, 1, "malformed_json"),
        ("judgments", JUDG_BAD, 1, "no_verdict_section"),
    ],
)
def test_strict_error_names_file_line_and_reason(tmp_path, source, path, line, reason):
    """BadRecordError carries path, line and reason of the first bad record (good file read first, no error)."""
    with pytest.raises(BadRecordError) as info:
        _run(source, tmp_path, strict=True)
    assert (info.value.path, info.value.line, info.value.reason) == (path, line, reason)
    assert f"{path}:{line}: {reason}" in str(info.value)


@pytest.mark.parametrize("source", ["cail2018", "judgments"])
def test_nothing_usable_is_an_error_with_stats(tmp_path, source):
    """Only bad records: prepare raises, main() exits non-zero, stats.json still explains every line."""
    bad = INPUTS[source][1]
    with pytest.raises(NoUsableDataError, match="no usable record"):
        prepare(PrepareConfig(source=source, inputs=(bad,), output=str(tmp_path)))
    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert stats["records"] == {"read": _lines(bad), "kept": 0, "skipped": _lines(bad)}
    assert main(["--source", source, "--input", bad, "--output", str(tmp_path / "cli")]) == 1


@pytest.mark.parametrize(
    ("source", "expected_skips"),
    [
        (
            "cail2018",
            {
                "bad_encoding": 1,
                "blank_line": 1,
                "duplicate_fact": 2,
                "empty_fact": 2,
                "empty_label": 1,
                "invalid_value": 3,
                "malformed_json": 1,
                "missing_field": 2,
                "multiple_defendants": 1,
                "no_defendant": 1,
                "not_an_object": 1,
                "wrong_type": 4,
            },
        ),
        (
            "judgments",
            {
                "empty_fact": 1,
                "malformed_json": 1,
                "missing_field": 1,
                "multiple_defendants": 1,
                "no_articles": 1,
                "no_charges": 1,
                "no_verdict_section": 1,
                "unparseable_term": 1,
                "wrong_type": 1,
            },
        ),
    ],
)
def test_accounting_reconciles(prepared, source, expected_skips):
    """read = kept + skipped; every reason counted by name; kept cases = cases written (no size limit)."""
    out, stats = prepared[source]
    records = stats["records"]
    assert records["read"] == sum(_lines(p) for p in INPUTS[source])
    assert records["read"] == records["kept"] + records["skipped"]
    assert stats["skipped_by_reason"] == expected_skips
    assert sum(expected_skips.values()) == records["skipped"]
    assert stats["cases"]["train"] + stats["cases"]["test"] == records["kept"]
    for reason, examples in stats["skip_examples"].items():
        assert examples and all(e["line"] >= 1 and e["file"] and e["detail"] for e in examples), reason
    written = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert written["records"] == records


@pytest.mark.parametrize("source", ["cail2018", "judgments"])
def test_every_case_gives_one_item_per_task(prepared, source):
    """Default run: every kept case appears once per task, in exactly one split."""
    out, stats = prepared[source]
    seen: dict[str, set[str]] = {}
    split_of: dict[str, str] = {}
    for split in ("train", "test"):
        for row in _rows(out, split):
            info = row["extra_info"]
            assert info["split"] == split
            assert split_of.setdefault(info["case_id"], split) == split
            assert info["task"] not in seen.setdefault(info["case_id"], set())
            seen[info["case_id"]].add(info["task"])
    assert len(seen) == stats["records"]["kept"]
    assert all(tasks == set(TASKS) for tasks in seen.values())


@pytest.mark.parametrize("source", ["cail2018", "judgments"])
def test_dedup_and_no_fact_in_both_splits(prepared, source):
    """Identical facts are written once (one case) and no fact is in both train and test."""
    out, _ = prepared[source]
    case_of_fact: dict[str, set[str]] = {}
    facts = {}
    for split in ("train", "test"):
        for row in _rows(out, split):
            case_of_fact.setdefault(_fact(row), set()).add(row["extra_info"]["case_id"])
        facts[split] = {_fact(r) for r in _rows(out, split)}
    assert all(len(cases) == 1 for cases in case_of_fact.values())
    assert not facts["train"] & facts["test"]


def test_sample_duplicates_are_reported_with_the_first_occurrence(prepared):
    """The two repeated CAIL facts (lines 71, 72) are skipped as duplicates of lines 1 and 3."""
    _, stats = prepared["cail2018"]
    details = {(pathlib.Path(e["file"]).name, e["line"], e["detail"]) for e in stats["skip_examples"]["duplicate_fact"]}
    assert details == {
        ("cail2018_sample.jsonl", 71, "same fact as cail2018_sample.jsonl:1"),
        ("cail2018_sample.jsonl", 72, "same fact as cail2018_sample.jsonl:3"),
    }


@pytest.mark.parametrize("source", ["cail2018", "judgments"])
def test_deterministic_parquet_bytes(tmp_path, source):
    """Same inputs and seed → byte-identical parquet files; another seed → another split."""
    digests = []
    for run in ("a", "b"):
        _run(source, tmp_path / run, seed=7, train_size=20, test_size=8)
        digests.append(
            [hashlib.sha256((tmp_path / run / f"{s}.parquet").read_bytes()).hexdigest() for s in ("train", "test")]
        )
    assert digests[0] == digests[1]
    _run(source, tmp_path / "c", seed=8, train_size=20, test_size=8)
    test_cases = {r["extra_info"]["case_id"] for r in _rows(tmp_path / "a", "test")}
    other_cases = {r["extra_info"]["case_id"] for r in _rows(tmp_path / "c", "test")}
    assert test_cases != other_cases


@pytest.mark.parametrize(
    ("source", "train_size", "test_size", "tasks", "train_per_task", "test_per_task"),
    [
        ("cail2018", 10, 6, TASKS, [3, 3, 2, 2], [2, 2, 1, 1]),
        ("cail2018", 40, 12, TASKS, [10, 10, 10, 10], [3, 3, 3, 3]),
        ("cail2018", 9, 3, ("charge", "term"), [5, 4], [2, 1]),
        ("cail2018", None, 8, ("verdict",), [62], [8]),
        ("judgments", 8, 4, TASKS, [2, 2, 2, 2], [1, 1, 1, 1]),
        ("judgments", 100, 4, ("article", "verdict"), [13, 13], [2, 2]),
    ],
)
def test_sizes_are_stratified_by_task(tmp_path, source, train_size, test_size, tasks, train_per_task, test_per_task):
    """--train-size/--test-size: items split evenly over tasks, sampled without replacement; capped by the cases."""
    stats = _run(source, tmp_path, train_size=train_size, test_size=test_size, tasks=tasks)
    for split, expected in (("train", train_per_task), ("test", test_per_task)):
        rows = _rows(tmp_path, split)
        per_task = Counter(r["extra_info"]["task"] for r in rows)
        assert [per_task[t] for t in tasks] == expected
        assert stats["items"][split] == dict(zip(tasks, expected, strict=True))
        pairs = [(r["extra_info"]["case_id"], r["extra_info"]["task"]) for r in rows]
        assert len(pairs) == len(set(pairs))
        assert [r["extra_info"]["index"] for r in rows] == list(range(len(rows)))


@pytest.mark.parametrize("source", ["cail2018", "judgments"])
@pytest.mark.parametrize("template", ["base", "chat"])
def test_schema_and_row_contract(tmp_path, source, template):
    """Every file has exactly ROW_SCHEMA; rows follow the issue-3 contract; prompts ask for think/answer."""
    _run(source, tmp_path, template=template)
    roles = ["user"] if template == "base" else ["system", "user"]
    for split in ("train", "test"):
        table = pq.read_table(tmp_path / f"{split}.parquet")
        assert table.schema.remove_metadata() == ROW_SCHEMA
        for row in table.to_pylist():
            task = row["extra_info"]["task"]
            assert row["data_source"] == f"legal/{task}" and row["ability"] == "legal"
            assert row["reward_model"]["style"] == "rule" and row["reward_model"]["ground_truth"]
            assert [m["role"] for m in row["prompt"]] == roles
            user = row["prompt"][-1]["content"]
            assert "<think>" in user and "</answer>" in user and _fact(row)
            info = row["extra_info"]
            assert info["term_kind"] in ("fixed", "life", "death", "none")
            assert (info["term_months"] > 0) == (info["term_kind"] == "fixed")
            assert info["charges"] and all(c.endswith("罪") for c in info["charges"])
            assert info["articles"] == sorted(set(info["articles"])) and info["fine"] >= 0 and info["verdict"]


@pytest.mark.parametrize("source", ["cail2018", "judgments"])
def test_ground_truth_text_per_task(prepared, source):
    """Gold text: charges joined by 、, articles as 第N条 ascending, term via format_term, the verdict sentence."""
    out, _ = prepared[source]
    for row in _rows(out, "train") + _rows(out, "test"):
        info, gold = row["extra_info"], row["reward_model"]["ground_truth"]
        expected = {
            "charge": "、".join(info["charges"]),
            "article": "、".join(f"第{a}条" for a in info["articles"]),
            "term": _term_gold(info, gold),
            "verdict": info["verdict"],
        }[info["task"]]
        assert gold == expected
        assert info["verdict"].startswith(("被告人", "一、被告人"))


def _term_gold(info: dict, gold: str) -> str:
    """Expected term gold: format_term of the row's term (penalty word as written), 单处罚金 for fine-only sentences."""
    if info["term_kind"] == "none" and info["fine"] > 0:
        return "单处罚金"
    match = re.match(r"有期徒刑|拘役|管制", gold) if info["term_kind"] == "fixed" else None
    return format_term(Term(info["term_kind"], info["term_months"], match.group(0) if match else ""))


LEAKS = (
    "本院认为",
    "判决如下",
    "如不服本判决",
    "刑 事 判 决 书",
    "公诉机关青禾县",
    "审判员",
    "《中华人民共和国刑法》",
)


def test_judgment_prompts_mask_the_verdict(prepared):
    """Judgment facts keep 经审理查明 content but never the reasoning, the verdict, the header or the appeal notice."""
    out, _ = prepared["judgments"]
    for row in _rows(out, "train") + _rows(out, "test"):
        fact = _fact(row)
        for leaked in LEAKS:
            assert leaked not in fact, (row["extra_info"]["case_id"], leaked)
        assert row["extra_info"]["verdict"] not in fact


@pytest.mark.parametrize(
    ("case_id", "charges", "articles", "term", "fine"),
    [
        ("qh-2019-001", ["盗窃罪"], [52, 53, 67, 264], ("fixed", 18), 5000),
        ("yc-2018-017", ["危险驾驶罪"], [52, 67, 72, 73, 133], ("fixed", 3), 4000),
        ("qh-2017-088", ["故意伤害罪"], [67, 234], ("fixed", 42), 0),
        ("yc-2019-204", ["诈骗罪"], [52, 53, 64, 67, 72, 73, 266], ("fixed", 36), 30000),
        ("qh-2018-130", ["盗窃罪", "诈骗罪"], [52, 53, 67, 69, 264, 266], ("fixed", 24), 8000),
        ("yc-2015-009", ["故意杀人罪"], [57, 67, 232], ("life", 0), 0),
        ("yc-2016-031", ["贩卖毒品罪"], [48, 57, 59, 347, 356], ("death", 0), 0),
        ("qh-2019-062", ["交通肇事罪"], [67, 133], ("fixed", 30), 0),
        ("yc-2018-340", ["拒不执行判决、裁定罪"], [313], ("fixed", 5), 0),
        ("qh-2020-015", ["寻衅滋事罪"], [67, 293], ("fixed", 10), 0),
        ("yc-2017-411", ["容留卖淫罪"], [52, 53, 64, 67, 359], ("fixed", 24), 10000),
        ("yc-2014-066", ["抢劫罪", "故意杀人罪"], [48, 57, 65, 69, 232, 263], ("death", 0), 20000),
        ("qh-2018-077", ["故意伤害罪"], [20, 37, 67, 234], ("none", 0), 0),
        ("yc-2019-512", ["非法侵入住宅罪"], [38, 245], ("fixed", 12), 0),
        ("yc-2020-066", ["盗窃罪"], [52, 53, 264], ("none", 0), 2000),
    ],
)
def test_judgment_gold_extraction(prepared, case_id, charges, articles, term, fine):
    """Each shipped judgment yields the labels a reader gets from its verdict and 刑法 citations."""
    out, _ = prepared["judgments"]
    rows = [r for s in ("train", "test") for r in _rows(out, s) if r["extra_info"]["case_id"] == case_id]
    assert len(rows) == len(TASKS)
    info = rows[0]["extra_info"]
    assert sorted(info["charges"]) == sorted(charges)
    assert info["articles"] == articles
    assert (info["term_kind"], info["term_months"]) == term
    assert info["fine"] == fine
    assert "（刑期" not in info["verdict"] and "如不服" not in info["verdict"]


@pytest.mark.parametrize("template", ["base", "chat"])
def test_parquet_loads_in_verl_rlhf_dataset(tmp_path, tiny_tokenizer, template):
    """verl's RLHFDataset reads our parquet with the local tokenizer's chat template and yields the row fields."""
    from verl.utils.dataset.rl_dataset import RLHFDataset

    _run("cail2018", tmp_path, template=template, train_size=8, test_size=4)
    config = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "max_prompt_length": 100000,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "truncation": "error",
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    dataset = RLHFDataset(str(tmp_path / "train.parquet"), tiny_tokenizer, config)
    assert len(dataset) == 8
    item = dataset[3]
    assert item["data_source"].startswith("legal/")
    assert item["reward_model"]["ground_truth"]
    assert item["index"] == 3 and item["extra_info"]["index"] == 3
    rendered = tiny_tokenizer.apply_chat_template(item["raw_prompt"], tokenize=False, add_generation_prompt=True)
    assert "案件事实" in rendered and rendered.endswith("<|im_start|>assistant\n")
