"""`python -m recipes.legal.evaluate --model <tiny model>` and `python -m recipes.evaluate --model` on safety rows:
vLLM's offline LLM generating for real (CPU build).

Legal prompts are rendered with the training config's chat template, safety prompts with the model's own; the
sampling comes from configs/eval_sampling*.yaml (n and the temperature raised, so several samples per item differ;
fewer new tokens and eager mode, for CPU time); each run goes on to metrics.json and the report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from helpers.real_vllm import REPO_ROOT, run_module

# Generous bound: a vLLM start on a busy 2-core box takes minutes (the session server's start counts toward the first
# test that needs it).
pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1500)]

N_SAMPLES = 2
ROWS_PER_TASK = 2


@pytest.fixture(scope="module")
def small_test_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first rows of each task of the shipped sample's prepared test set."""
    out = tmp_path_factory.mktemp("eval_data")
    subprocess.run(
        [sys.executable, "-m", "data.prepare", "--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl",
         "--output", str(out)],
        cwd=REPO_ROOT, check=True, capture_output=True,
    )  # fmt: skip
    table = pq.read_table(out / "test.parquet")
    seen: Counter[str] = Counter()
    keep = []
    for i, source in enumerate(table.column("data_source").to_pylist()):
        if seen[source] < ROWS_PER_TASK:
            seen[source] += 1
            keep.append(i)
    pq.write_table(table.take(keep), out / "small.parquet")
    return out / "small.parquet"


def cpu_sampling(path: Path, tmp_path: Path) -> Path:
    """The sampling YAML at path, changed for a CPU test: n samples at temperature 1, 256 new tokens, eager mode."""
    sampling = yaml.safe_load(path.read_text(encoding="utf-8"))
    # 256 new tokens instead of 2048: the random model never emits EOS, and 2048 decode steps cost minutes on 2 cores.
    sampling["sampling"].update(n=N_SAMPLES, temperature=1.0, max_tokens=256)
    sampling["llm"]["enforce_eager"] = True  # no minutes of inductor compilation on a 2-core CPU
    out = tmp_path / "sampling.yaml"
    out.write_text(yaml.safe_dump(sampling, allow_unicode=True), encoding="utf-8")
    return out


def test_evaluate_model_generates_with_vllm_and_reports(
    tiny_model_dir: Path, small_test_set: Path, tmp_path: Path
) -> None:
    """predictions.jsonl has n samples per item, rendered with the training template; metrics.json and the report
    follow from them."""
    sampling = cpu_sampling(REPO_ROOT / "configs" / "eval_sampling.yaml", tmp_path)
    out = tmp_path / "report"
    run_module(
        ["recipes.legal.evaluate", "--data", str(small_test_set), "--model", str(tiny_model_dir), "--out", str(out),
         "--mode", "rules", "--sampling-config", str(sampling)]
    )  # fmt: skip

    rows = pq.read_table(small_test_set).to_pylist()
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(rows) * N_SAMPLES
    per_item = Counter((line["data_source"], line["index"]) for line in lines)
    assert set(per_item) == {(r["data_source"], r["extra_info"]["index"]) for r in rows}
    assert set(per_item.values()) == {N_SAMPLES}
    assert {line["sample"] for line in lines} == set(range(N_SAMPLES))
    assert all(isinstance(line["response"], str) for line in lines)
    assert len({line["response"] for line in lines}) > 1  # sampled text, not one canned string

    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["model"] == str(tiny_model_dir)
    assert metrics["overall"]["predictions"] == str(out / "predictions.jsonl")
    assert metrics["overall"]["skipped_total"] == 0
    assert (out / "report.md").is_file() and (out / "scores.jsonl").is_file()
    scores = (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(scores) == len(lines)


def test_safety_model_generates_with_its_own_template_and_reports(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The shared entry picks the safety recipe from the rows, generates n samples per text with the model's own
    chat template (safety_grpo sets none), and scores every sample into metrics.json and the report."""
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "data.prepare", "--source", "safety", "--input", "data/samples/safety_sample.jsonl",
         "--output", str(data)],
        cwd=REPO_ROOT, check=True, capture_output=True,
    )  # fmt: skip
    small = data / "small.parquet"
    pq.write_table(pq.read_table(data / "test.parquet").slice(0, 2), small)
    out = tmp_path / "report"
    sampling = cpu_sampling(REPO_ROOT / "configs" / "eval_sampling_safety.yaml", tmp_path)
    run_module(
        ["recipes.evaluate", "--data", str(small), "--model", str(tiny_model_dir), "--out", str(out),
         "--sampling-config", str(sampling)]
    )  # fmt: skip
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 * N_SAMPLES and {line["data_source"] for line in lines} == {"safety"}
    assert sorted(Counter(line["index"] for line in lines).values()) == [N_SAMPLES, N_SAMPLES]
    assert len({line["response"] for line in lines}) > 1
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["recipe"] == "safety" and metrics["overall"]["model"] == str(tiny_model_dir)
    assert metrics["overall"]["skipped_total"] == 0 and metrics["safety"]["samples"] == 2 * N_SAMPLES
    assert (out / "report.md").is_file() and (out / "error_hist.png").is_file()
