"""The README's example lines work on the README's own data: every ```json line of README.md, scored against the
shipped samples prepared as the README prepares them (legal and safety predictions, rejection sampling's
samples.jsonl)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from data.prepare import main as prepare
from recipes.evaluation import evaluate as G
from recipes.safety import rejection_sample

REPO = Path(__file__).resolve().parents[1]
JSON_BLOCK = re.compile(r"^( *)```json\n(.*?)^\1```$", re.S | re.M)


def readme_json_lines() -> list[dict]:
    """Every line of every ```json block in README.md, parsed (a block may be indented inside a list item)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = []
    for indent, body in JSON_BLOCK.findall(text):
        lines += [json.loads(line.removeprefix(indent)) for line in body.splitlines() if line.strip()]
    return lines


def _kind(line: dict) -> str:
    if "row" in line:
        return "samples"
    return "legal" if str(line.get("data_source", "")).startswith("legal/") else str(line.get("data_source"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped samples prepared with the README's commands (data/prepared/{legal,safety})."""
    root = tmp_path_factory.mktemp("prepared")
    for source, sample, name in (("cail2018", "cail2018_sample", "legal"), ("safety", "safety_sample", "safety")):
        argv = ["--source", source, "--input", f"data/samples/{sample}.jsonl", "--output", str(root / name)]
        assert prepare(argv) == 0
    return root


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def test_the_readme_has_an_example_of_each_format() -> None:
    """Legal and safety predictions and a samples.jsonl line are shown (and nothing of another kind)."""
    kinds = {_kind(line) for line in readme_json_lines()}
    assert kinds == {"legal", "safety", "samples"}


@pytest.mark.parametrize(("kind", "extra"), [("legal", ["--mode", "rules"]), ("safety", [])])
def test_readme_prediction_lines_score_on_the_prepared_sample(
    prepared: Path, tmp_path: Path, kind: str, extra: list[str]
) -> None:
    """Each example prediction line is scored (none skipped, e.g. as data_source_mismatch) and right where it says."""
    lines = [line for line in readme_json_lines() if _kind(line) == kind]
    predictions = _write(tmp_path / "preds.jsonl", lines)
    out = tmp_path / "report"
    data = prepared / kind / "test.parquet"
    assert G.main(["--data", str(data), "--predictions", str(predictions), "--out", str(out), *extra]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["skipped"] == {} and metrics["overall"]["n_responses"] == len(lines)
    records = [json.loads(r) for r in (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    if kind == "legal":  # sample 0 names the gold charge, sample 1 adds a wrong one
        assert [r["acc"] for r in records] == [1.0, 0.0]
    else:  # index 0 of the sample is a clean text: the all-100 answer is exact on all nine
        assert [r["all_within_5"] for r in records] == [True]


def test_readme_samples_line_is_read_by_rejection_sampling(prepared: Path, tmp_path: Path) -> None:
    """The samples.jsonl example, given to --samples with the prepared train.parquet: scored and counted (one answer
    for a clean text is a collapsed round by the collapse checks, so the example keeps it with --keep-collapsed)."""
    lines = [line for line in readme_json_lines() if _kind(line) == "samples"]
    samples = _write(tmp_path / "samples.jsonl", lines)
    out = tmp_path / "round"
    argv = ["--samples", str(samples), "--data", str(prepared / "safety" / "train.parquet"), "--out", str(out),
            "--keep-collapsed"]  # fmt: skip
    assert rejection_sample.main(argv) == 0
    result = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert result["generated"] == len(lines) == 1
    scores = [json.loads(r) for r in (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(s["row"], s["sample"]) for s in scores] == [(0, 0)]
