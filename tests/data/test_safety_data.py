"""`python -m data.prepare --source safety`: accounting, skip reasons per bad line, --strict, dedup, split, rows."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.gold import gold_from_ground_truth
from data.domains.safety.prompt import TEXT_FENCE_END, TEXT_FENCE_START
from data.prepare import BadRecordError, PrepareConfig, prepare
from data.reader import decode_record
from data.sources import SkipRecord, get_parser, get_source
from data.sources.safety import MAX_TEXT_CHARS, ROW_SCHEMA
from data.split import normalize_fact

REPO = pathlib.Path(__file__).resolve().parents[2]
GOOD = REPO / "data" / "samples" / "safety_sample.jsonl"
BAD = REPO / "data" / "samples" / "safety_bad.jsonl"

# safety_bad.jsonl, line by line: the reason each line is skipped with.
BAD_REASONS = [
    "malformed_json",
    "blank_line",
    "not_an_object",
    "missing_field",  # text
    "wrong_type",  # text is a number
    "empty_text",
    "missing_field",  # scores
    "wrong_type",  # scores is a list
    "missing_dimension",
    "unknown_dimension",
    "invalid_value",  # 120
    "invalid_value",  # -5
    "wrong_type",  # "85"
    "wrong_type",  # 85.5
    "wrong_type",  # true
    "missing_field",  # reasoning
    "empty_reasoning",
    "wrong_type",  # reasoning is a list
    "bad_encoding",
]


def _lines(path: pathlib.Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _text(row: dict) -> str:
    user = row["prompt"][1]["content"]
    return user.split(TEXT_FENCE_START + "\n", 1)[1].split("\n" + TEXT_FENCE_END, 1)[0]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict]:
    out = tmp_path_factory.mktemp("safety_prep")
    stats = prepare(PrepareConfig(source="safety", inputs=(str(GOOD), str(BAD)), output=str(out)))
    return out, stats


@pytest.mark.parametrize(("line", "reason"), list(enumerate(BAD_REASONS, start=1)))
def test_each_bad_line_is_skipped_with_its_reason(line, reason):
    """Every line of safety_bad.jsonl fails in exactly the way it was written to."""
    raw = _lines(BAD)[line - 1]
    with pytest.raises(SkipRecord) as info:
        get_parser("safety")(decode_record(raw), f"safety_bad.jsonl:{line}")
    assert info.value.reason == reason


def test_bad_file_has_one_line_per_reason_case():
    """The table above covers the whole bad file, and the sample file is entirely valid."""
    assert len(_lines(BAD)) == len(BAD_REASONS)
    parse = get_parser("safety")
    for i, raw in enumerate(_lines(GOOD), start=1):
        parse(decode_record(raw), f"safety_sample.jsonl:{i}")


def test_text_too_long_is_skipped():
    """A text longer than MAX_TEXT_CHARS is skipped with its own reason."""
    record = {"text": "字" * (MAX_TEXT_CHARS + 1), "scores": dict.fromkeys(DIMENSIONS, 100), "reasoning": "x"}
    with pytest.raises(SkipRecord, match="text_too_long"):
        get_parser("safety")(record, "x:1")


def test_accounting_read_equals_kept_plus_skipped(prepared):
    """read = kept + skipped; skips by reason = the bad lines' reasons + the sample's two planted duplicates."""
    _out, stats = prepared
    rec = stats["records"]
    assert rec["read"] == len(_lines(GOOD)) + len(_lines(BAD))
    assert rec["read"] == rec["kept"] + rec["skipped"]
    expected: dict[str, int] = {}
    for reason in [*BAD_REASONS, "duplicate_fact", "duplicate_fact"]:
        expected[reason] = expected.get(reason, 0) + 1
    assert stats["skipped_by_reason"] == dict(sorted(expected.items()))
    assert rec["kept"] == len(_lines(GOOD)) - 2


def test_split_is_by_text_disjoint_and_complete(prepared):
    """Every kept text is in exactly one split; no normalized text repeats anywhere."""
    out, stats = prepared
    rows = {s: pq.read_table(out / f"{s}.parquet").to_pylist() for s in ("train", "test")}
    texts = {s: [normalize_fact(_text(r)) for r in rows[s]] for s in rows}
    assert not set(texts["train"]) & set(texts["test"])
    assert (
        len(set(texts["train"] + texts["test"])) == len(texts["train"]) + len(texts["test"]) == stats["records"]["kept"]
    )
    assert stats["cases"]["test"] == round(0.2 * stats["records"]["kept"])
    assert sum(stats["distributions"]["train"]["labels"].values()) >= stats["cases"]["train"]


def test_rows_follow_the_schema_and_carry_the_gold(prepared):
    """Schema, data_source, system+user prompt, ground truth that the reward reads back, extra_info.index order."""
    out, _stats = prepared
    table = pq.read_table(out / "train.parquet")
    assert table.schema.equals(ROW_SCHEMA)
    rows = table.to_pylist()
    assert [r["extra_info"]["index"] for r in rows] == list(range(len(rows)))
    source = {json.loads(line)["text"].strip(): json.loads(line) for line in _lines(GOOD)}
    for row in rows:
        assert row["data_source"] == "safety" and row["ability"] == "safety"
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        gold = gold_from_ground_truth(row["reward_model"]["ground_truth"])
        record = source[_text(row)]
        assert gold.score_map == record["scores"] and gold.reasoning == record["reasoning"]
        assert row["extra_info"]["violated"] == [k for k in DIMENSIONS if record["scores"][k] < 60]


def test_strict_stops_at_the_first_bad_line(tmp_path):
    """--strict: the error names file, line and reason."""
    with pytest.raises(BadRecordError, match=r"safety_bad\.jsonl:1: malformed_json"):
        prepare(PrepareConfig(source="safety", inputs=(str(BAD),), output=str(tmp_path), strict=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tasks": ("charge",)}, "--tasks"), ({"template": "base"}, "--template")],
)
def test_legal_options_are_rejected_for_safety(tmp_path, kwargs, message):
    """The safety source has one task (score) and one template (chat)."""
    with pytest.raises(ValueError, match=message):
        PrepareConfig(source="safety", inputs=(str(GOOD),), output=str(tmp_path), **kwargs)


def test_cli(tmp_path):
    """The command in the issue works as written and prints the accounting."""
    proc = subprocess.run(
        [sys.executable, "-m", "data.prepare", "--source", "safety", "--input", str(GOOD), "--output", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"safety: read {len(_lines(GOOD))} records, kept {len(_lines(GOOD)) - 2}, skipped 2" in proc.stdout
    assert (tmp_path / "train.parquet").is_file() and (tmp_path / "test.parquet").is_file()


def test_source_description():
    """get_source gives the safety rows builder, schema, task and template."""
    source = get_source("safety")
    assert (source.tasks, source.templates, source.default_template) == (("score",), ("chat",), "chat")
    assert source.row_schema.equals(ROW_SCHEMA)


def test_parquet_loads_in_verl_rlhf_dataset(prepared, tiny_tokenizer, tmp_path):
    """verl's RLHFDataset reads the safety parquet and renders the system + user prompt with a chat template."""
    from verl.utils.dataset.rl_dataset import RLHFDataset

    out, stats = prepared
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
    dataset = RLHFDataset(str(out / "train.parquet"), tiny_tokenizer, config)
    assert len(dataset) == stats["cases"]["train"]
    item = dataset[2]
    assert item["data_source"] == "safety"
    rendered = tiny_tokenizer.apply_chat_template(item["raw_prompt"], tokenize=False, add_generation_prompt=True)
    assert rendered.startswith("<|im_start|>system\n") and "<|im_start|>user\n" in rendered
    assert all(k in rendered for k in DIMENSIONS)
