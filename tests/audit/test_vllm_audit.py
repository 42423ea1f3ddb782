"""The judge audit end to end against a real vLLM server (CPU build, tiny random-weight Qwen2).

The model's grades are noise, so the assertions are about the audit's own path through vLLM: every question sent
through the training client and prompts, answered inside the structured-output choice set, and the report written.
"""

from __future__ import annotations

import json

import pytest
from helpers.real_vllm import RealVLLM

from data.prepare import main as prepare
from recipes.legal.audit_judge import main as audit_main
from recipes.safety.audit_judge import main as safety_audit_main

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1500)]


def test_audit_runs_end_to_end_against_real_vllm(real_vllm: RealVLLM, tmp_path, monkeypatch) -> None:
    """audit.json, audit.md and the plots from a real server: no failure, every grade readable, advice given."""
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    prepared = tmp_path / "prepared"
    assert (
        prepare(["--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl", "--output", str(prepared)])
        == 0
    )
    out = tmp_path / "audit"
    argv = ["--data", str(prepared / "test.parquet"), "--judge-base-url", real_vllm.base_url]
    argv += ["--judge-model", real_vllm.model, "--config", "", "--n", "40", "--out", str(out)]
    assert audit_main(argv) == 0
    audit = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert audit["failures"]["n"] == 0
    assert audit["n_questions"] == len(audit["records"]) > 40  # the pairs plus the probe set
    for task in ("charge", "article", "verdict"):  # grades come from vLLM's choice constraint: always readable
        assert audit["tasks"][task]["n"] > 0 and audit["tasks"][task]["unreadable"] == 0, task
    assert audit["latency"]["n"] == audit["n_questions"]
    assert audit["advice"] and audit["advice"] in (out / "audit.md").read_text(encoding="utf-8")
    for plot in ("accuracy.png", "confusion.png", "term_error.png", "probes.png", "latency.png"):
        assert (out / plot).stat().st_size > 1000


def test_safety_audit_runs_end_to_end_against_real_vllm(real_vllm: RealVLLM, tmp_path, monkeypatch) -> None:
    """The safety reasoning grader's audit through the same server: every grade readable, report written."""
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    prepared = tmp_path / "prepared"
    argv = ["--source", "safety", "--input", "data/samples/safety_sample.jsonl", "--output", str(prepared)]
    assert prepare(argv) == 0
    out = tmp_path / "audit"
    argv = ["--data", str(prepared / "test.parquet"), "--judge-base-url", real_vllm.base_url]
    argv += ["--judge-model", real_vllm.model, "--config", "", "--n", "20", "--out", str(out)]
    assert safety_audit_main(argv) == 0
    audit = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert audit["failures"]["n"] == 0 and audit["n_questions"] == len(audit["records"]) == 20 + 13
    block = audit["tasks"]["reasoning"]
    assert block["answered"] == 20 and block["unreadable"] == 0  # vLLM's choice constraint: always a grade
    assert audit["run"]["judge_prompts"].endswith("data/domains/safety/judge_prompts.yaml")
    assert audit["advice"] and audit["advice"] in (out / "audit.md").read_text(encoding="utf-8")
    for plot in audit["plots"]:
        assert (out / plot).stat().st_size > 1000
