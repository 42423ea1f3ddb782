"""data.prepare --tokenizer (issue 17): prompt tokens counted as verl counts them, reported, and overlong cases
skipped under a counted reason, so verl's own filter then drops nothing."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import yaml
from omegaconf import OmegaConf

from data.domains.legal.tasks import TASKS, build_prompt
from data.prepare import PrepareConfig, prepare
from data.tokens import DEFAULT_CONFIG, default_max_prompt_tokens, token_distribution

REPO = pathlib.Path(__file__).resolve().parents[2]
CAIL = str(REPO / "data" / "samples" / "cail2018_sample.jsonl")


def _verl_len(tokenizer, messages) -> int:
    """What verl's RLHFDataset filter counts for one prompt (its own code path: apply_chat_template + normalize)."""
    from verl.utils.dataset.rl_dataset import normalize_token_ids

    return len(normalize_token_ids(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)))


@pytest.fixture(scope="module")
def expected(tiny_tokenizer) -> dict[int, int]:
    """Line → longest task prompt in tokens, for every sample line, counted independently of data.prepare."""
    out = {}
    for line_no, raw in enumerate(pathlib.Path(CAIL).read_text(encoding="utf-8").splitlines(), 1):
        fact = json.loads(raw)["fact"].strip()
        out[line_no] = max(_verl_len(tiny_tokenizer, build_prompt(t, fact, "base")) for t in TASKS)
    return out


def test_counts_match_verl_and_overlong_cases_are_counted_skips(
    tmp_path, tiny_tokenizer, tiny_tokenizer_path, expected
):
    """Budget at the median: exactly the cases over it are skipped as prompt_too_long; every written prompt fits."""
    budget = sorted(expected.values())[len(expected) // 2]
    over = {line for line, n in expected.items() if n > budget}
    assert 0 < len(over) < len(expected)
    stats = prepare(
        PrepareConfig(
            source="cail2018",
            inputs=(CAIL,),
            output=str(tmp_path),
            tokenizer=tiny_tokenizer_path,
            max_prompt_tokens=budget,
        )
    )
    assert stats["skipped_by_reason"]["prompt_too_long"] == len(over)
    assert stats["records"]["read"] == stats["records"]["kept"] + stats["records"]["skipped"]
    tok = stats["prompt_tokens"]
    assert tok["counted"] == len(expected) and tok["over_budget"] == len(over) and tok["max_prompt_tokens"] == budget
    assert {k: tok[k] for k in ("p50", "p90", "p99", "max")} == token_distribution(
        __import__("numpy").array(list(expected.values()))
    )
    assert tok["max"] == max(expected.values())
    rows = [r for s in ("train", "test") for r in pq.read_table(tmp_path / f"{s}.parquet").to_pylist()]
    assert rows and all(_verl_len(tiny_tokenizer, r["prompt"]) <= budget for r in rows)
    written_lines = {int(r["extra_info"]["case_id"].rsplit(":", 1)[1]) for r in rows}
    assert not written_lines & over

    from verl.utils.dataset.rl_dataset import RLHFDataset

    config = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "max_prompt_length": budget,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "truncation": "error",
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    train = pq.read_table(tmp_path / "train.parquet").num_rows
    assert len(RLHFDataset(str(tmp_path / "train.parquet"), tiny_tokenizer, config)) == train  # verl drops nothing


def test_cli_reports_the_distribution_and_uses_the_config_budget(tmp_path, tiny_tokenizer_path, expected):
    """Without --max-prompt-tokens the budget is data.max_prompt_length of the base config; the summary shows it."""
    cmd = [sys.executable, "-m", "data.prepare", "--source", "cail2018", "--input", CAIL, "--output", str(tmp_path)]
    proc = subprocess.run([*cmd, "--tokenizer", tiny_tokenizer_path], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    budget = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["data"]["max_prompt_length"]
    assert default_max_prompt_tokens() == budget
    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert stats["prompt_tokens"]["max_prompt_tokens"] == budget
    dist = token_distribution(__import__("numpy").array(list(expected.values())))
    assert f"p50 {dist['p50']}, p90 {dist['p90']}, p99 {dist['p99']}, max {dist['max']}" in proc.stdout
    assert f"over {budget}:" in proc.stdout


def test_without_tokenizer_nothing_is_counted(tmp_path):
    """No --tokenizer: no prompt_tokens in stats; --max-prompt-tokens alone is a usage error."""
    stats = prepare(PrepareConfig(source="cail2018", inputs=(CAIL,), output=str(tmp_path)))
    assert "prompt_tokens" not in stats and "prompt_too_long" not in stats["skipped_by_reason"]
    cmd = [sys.executable, "-m", "data.prepare", "--source", "cail2018", "--input", CAIL, "--output", str(tmp_path)]
    proc = subprocess.run([*cmd, "--max-prompt-tokens", "100"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "--tokenizer" in proc.stderr


def test_a_missing_tokenizer_is_one_error_line(tmp_path):
    """--tokenizer pointing nowhere: exit 1 with one line naming the path, no traceback."""
    cmd = [sys.executable, "-m", "data.prepare", "--source", "cail2018", "--input", CAIL, "--output", str(tmp_path)]
    proc = subprocess.run([*cmd, "--tokenizer", str(tmp_path / "nope")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"--tokenizer {tmp_path / 'nope'}" in proc.stderr
