"""The monitor's parts without a training run: panels from the recipe's metrics, the wandb workspace object (no
network), the offline report's readers and markdown, the validation-table selection against verl's own.

The same commands on real CPU-loop outputs of both recipes: tests/monitor/test_dashboard.py.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import recipes.safety.recipe as safety_recipe
from recipes.monitor import dashboard
from recipes.monitor.panels import (
    OVERALL_ONLY,
    data_sources,
    panel_keys,
    probed_step_metrics,
    recipe_sections,
    series_labels,
)
from recipes.monitor.report import md_text, pick_steps
from recipes.monitor.run_files import RunFilesError, locate, read_metrics, read_rows
from recipes.recipe import load_recipe
from recipes.trainer import step_metrics
from recipes.trainer.step_metrics import recipe_means
from recipes.trainer.val_generations import VAL_TABLE_KEY, ValTableLogger, select_indices

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------------- panels
def test_sections_follow_the_issue_in_order() -> None:
    """reward, format, judge, length, language, policy, the recipe's own, validation, timing (legal has no own)."""
    legal = [s.name for s in recipe_sections(load_recipe("legal"))]
    safety = [s.name for s in recipe_sections(load_recipe("safety"))]
    assert legal == ["reward", "format", "judge", "length", "language", "policy", "validation", "timing"]
    assert safety == ["reward", "format", "judge", "length", "policy", "safety", "validation", "timing"]


@pytest.mark.parametrize("recipe_name", ["legal", "safety"])
def test_every_step_metric_the_aggregation_logs_is_plotted_once(recipe_name: str) -> None:
    """No reward/* key of the recipe is left out (one task: its group, not a duplicate overall line)."""
    recipe = load_recipe(recipe_name)
    keys = panel_keys(recipe_sections(recipe))
    assert len(keys) == len(set(keys))
    probed = probed_step_metrics(recipe)
    plotted = {k for k in keys if k.startswith("reward/")}
    if len(data_sources(recipe)) == 1:
        source = data_sources(recipe)[0]
        probed = {k for k in probed if not (k.startswith("reward/overall/") and k.replace("overall", source) in probed)}
    overall_only = {k for k in probed if k.rsplit("/", 1)[1] in OVERALL_ONLY and not k.startswith("reward/overall/")}
    assert plotted == probed - overall_only


def test_legal_judge_section_has_agreement_failures_unreadable_and_unscored() -> None:
    """The issue's judge panels: calls, latency, failures, unreadable, agreement with the rules, unscored."""
    judge = next(s for s in recipe_sections(load_recipe("legal")) if s.name == "judge")
    keys = {k for p in judge.panels for k in p.keys}
    for metric in ("judge_calls", "judge_latency_p95_ms", "judge_failure_rate", "judge_unreadable_rate"):
        assert {f"reward/overall/{metric}", f"reward/legal/verdict/{metric}"} <= keys, metric
    assert {k for k in keys if "judge_rules_agreement" in k} == {"reward/overall/judge_rules_agreement"}
    assert step_metrics.UNSCORED_METRIC in keys


def test_a_metric_added_to_a_recipe_flows_into_its_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new Recipe.step_metrics entry (e.g. detection recall) shows up in the recipe's section without an edit."""
    extra = dataclasses.replace(
        safety_recipe.RECIPE, step_metrics=(*safety_recipe.RECIPE.step_metrics, ("detection_recall", "within5"))
    )
    monkeypatch.setattr(safety_recipe, "RECIPE", extra)
    recipe_means.cache_clear()
    try:
        own = next(s for s in recipe_sections(load_recipe("safety")) if s.name == "safety")
        assert ("reward/safety/detection_recall",) in [p.keys for p in own.panels]
    finally:
        recipe_means.cache_clear()


def test_a_trainer_count_added_to_step_metrics_flows_into_the_judge_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new reward/overall/* count the trainer logs (a *_METRIC constant, e.g. masked) gets a judge panel."""
    monkeypatch.setattr(step_metrics, "MASKED_METRIC", "reward/overall/masked", raising=False)
    judge = next(s for s in recipe_sections(load_recipe("legal")) if s.name == "judge")
    assert ("reward/overall/masked",) in [p.keys for p in judge.panels]


@pytest.mark.parametrize(
    ("keys", "labels"),
    [
        (["reward/overall/score_mean", "reward/legal/term/score_mean"], ["overall", "legal/term"]),
        (["response_length/min", "response_length/max"], ["min", "max"]),
        (["actor/entropy"], ["actor/entropy"]),
        (["val-core/legal/charge/acc/mean@1", "val-core/legal/term/acc/mean@1"], ["charge", "term"]),
        (["timing_s/gen", "perf/throughput"], ["timing_s/gen", "perf/throughput"]),
    ],
)
def test_legend_labels_drop_the_shared_path(keys: list[str], labels: list[str]) -> None:
    assert series_labels(keys) == labels


# ----------------------------------------------------------------------------------------------------- workspace
@pytest.mark.parametrize("recipe_name", ["legal", "safety"])
def test_workspace_builds_offline_with_every_panel_key(recipe_name: str) -> None:
    """The workspace object (and the view save() would upload) holds every panel key and the validation table."""
    import wandb_workspaces.reports.v2 as wr

    from recipes.monitor.workspace import build_workspace, workspace_keys

    sections = recipe_sections(load_recipe(recipe_name))
    workspace = build_workspace(sections, "ent", "proj", f"{recipe_name} view", own=recipe_name)
    assert workspace_keys(workspace) == panel_keys(sections)
    assert [s.name for s in workspace.sections] == [s.name for s in sections]
    assert [s.name for s in workspace.sections if not s.is_open] == ["timing"]
    validation = next(s for s in workspace.sections if s.name == "validation")
    tables = [p for p in validation.panels if isinstance(p, wr.WeavePanelSummaryTable)]
    assert [t.table_name for t in tables] == [VAL_TABLE_KEY]
    view = json.dumps(workspace._to_model().model_dump(by_alias=True))  # what save() uploads, built offline
    missing = [key for key in panel_keys(sections) if json.dumps(key) not in view]
    assert not missing


def test_dashboard_saves_and_prints_the_url(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Saving goes through wandb-workspaces' Workspace.save; the URL is the one line printed."""
    import wandb_workspaces.workspaces as ws

    saved = []

    def save(self: ws.Workspace) -> ws.Workspace:
        saved.append(self)
        self._internal_name = "nw-abc"
        return self

    monkeypatch.setattr(ws.Workspace, "save", save)
    monkeypatch.setattr(ws.Workspace, "url", property(lambda self: f"https://wandb.test/{self.entity}/{self.project}"))
    assert dashboard.main(["--recipe", "legal", "--entity", "team", "--project", "legal-grpo"]) == 0
    assert capsys.readouterr().out == "https://wandb.test/team/legal-grpo\n"
    assert saved[0].name == "legal GRPO: what the model learns" and saved[0].project == "legal-grpo"


def test_dashboard_save_failure_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import wandb_workspaces.workspaces as ws

    def save(self: ws.Workspace) -> ws.Workspace:
        raise RuntimeError("api_key not configured\n(no-tty)")

    monkeypatch.setattr(ws.Workspace, "save", save)
    assert dashboard.main(["--recipe", "safety", "--entity", "team", "--project", "p"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "team/p" in err and "api_key not configured (no-tty)" in err


def test_dashboard_needs_entity_and_project_unless_printing_keys() -> None:
    with pytest.raises(SystemExit) as info:
        dashboard.main(["--recipe", "legal"])
    assert info.value.code == 2


# ------------------------------------------------------------------------------------------- validation table
def test_table_samples_are_the_ones_verl_would_log() -> None:
    """select_indices picks what verl's _maybe_log_val_generations picks (sorted by prompt, seed 42, first N)."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    prompts = [f"案情{n % 7}-{n}" for n in range(23)]
    outputs = [f"回答{n}" for n in range(23)]
    scores = [float(n) for n in range(23)]
    logged: list = []
    fake = types.SimpleNamespace(
        config=types.SimpleNamespace(trainer=types.SimpleNamespace(log_val_generations=6, logger=["wandb"])),
        validation_generations_logger=types.SimpleNamespace(log=lambda loggers, samples, step: logged.extend(samples)),
        global_steps=3,
    )
    PPOTrainer._maybe_log_val_generations(fake, prompts, outputs, scores)
    assert [(prompts[i], outputs[i], scores[i]) for i in select_indices(prompts, 6)] == logged
    assert select_indices(prompts, 0) == []


def test_table_logger_keeps_every_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each log sends one table with all rows so far, columns: step, data_source, prompt, response, gold, score,
    parts; nothing is sent without a wandb run."""
    import wandb

    sent: list = []
    monkeypatch.setattr(wandb, "log", lambda data, step: sent.append((step, data)))
    monkeypatch.setattr(wandb, "run", None)
    table = ValTableLogger()
    row = {"step": 0, "data_source": "legal/term", "prompt": "p", "response": "r", "gold": "g", "score": -1.0,
           "format_ok": 0.0, "acc": 0.0}  # fmt: skip
    assert table.log([row], 0) is False and sent == []
    monkeypatch.setattr(wandb, "run", object())
    assert table.log([{**row, "step": 5, "score": 2.0}], 5) is True
    step, data = sent[-1]
    logged = data[VAL_TABLE_KEY]
    assert step == 5 and logged.columns == ["step", "data_source", "prompt", "response", "gold", "score", "acc",
                                            "format_ok"]  # fmt: skip
    assert [r[0] for r in logged.data] == [0, 5] and logged.data[1][5] == 2.0


# -------------------------------------------------------------------------------------------------- run files
def test_missing_metrics_file_is_one_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RunFilesError, match=str(tmp_path / "metrics.jsonl")):
        locate(tmp_path)
    with pytest.raises(RunFilesError, match="no rollout directory"):
        (tmp_path / "m.jsonl").write_text("")
        locate(tmp_path / "m.jsonl", rollouts=tmp_path / "nope")
    proc = subprocess.run(
        [sys.executable, "-m", "recipes.run_report", "--run", str(tmp_path / "gone"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"run_report: error: no metrics file at {tmp_path / 'gone'}")
    assert "Traceback" not in proc.stderr and not (tmp_path / "o" / "report.md").exists()


def test_torn_and_foreign_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    """Bad lines are skipped with their numbers; good records (a step logged twice merges) are all kept."""
    lines = [
        json.dumps({"step": 1, "data": {"actor/entropy": 7.0, "note": "text", "x": float("nan")}}),
        "[1, 2]",
        json.dumps({"step": "2", "data": {}}),
        json.dumps({"step": 2, "data": {"actor/entropy": 6.5}}),
        json.dumps({"step": 2, "data": {"val-core/legal/term/acc/mean@1": 0.25}}),
        '{"step": 3, "data": {"actor/ent',
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(("\n".join(lines)).encode() + b"\n\xff\xfe\n")
    metrics, skipped = read_metrics(path)
    assert metrics.records == 3 and metrics.values("actor/entropy") == ([1, 2], [7.0, 6.5])
    assert metrics.steps() == [1, 2] and "note" not in metrics.series and "x" not in metrics.series
    assert skipped.count == 4
    assert [why.split(":")[0] for why in skipped.first] == ["line 2", "line 3", "line 6", "line 7"]
    assert str(path) in skipped.line()
    (tmp_path / "3.jsonl").write_text('{"score": 1}\n{"score":\n', encoding="utf-8")
    rows, bad = read_rows(tmp_path, 3)
    assert rows == [{"score": 1}] and bad.count == 1


@pytest.mark.parametrize(
    ("available", "wanted", "shown", "absent"),
    [
        ([1, 2, 3, 4, 5], (), [1, 3, 5], []),
        ([1, 2], (), [1, 2], []),
        ([7], (), [7], []),
        ([], (), [], []),
        ([1, 2, 3], (3, 9), [3], [9]),
    ],
)
def test_pick_steps(available: list[int], wanted: tuple[int, ...], shown: list[int], absent: list[int]) -> None:
    assert pick_steps(available, wanted) == (shown, absent)


# ------------------------------------------------------------------------------------------------------ markdown
@pytest.mark.parametrize(
    ("text", "limit", "cell"),
    [
        ("a|b", 10, r"a\|b"),
        (
            "<think>想</think><answer>盗窃</answer>",
            100,
            "&lt;think&gt;想&lt;/think&gt;&lt;answer&gt;盗窃&lt;/answer&gt;",
        ),
        ("第一行\n第二行\r\n第三行", 100, "第一行 ↵ 第二行 ↵ 第三行"),
        ("**粗** _斜_ [链](u) `码` # 题", 100, r"\*\*粗\*\* \_斜\_ \[链\](u) \`码\` \# 题"),
        ("x" * 50, 10, "x" * 10 + " …"),
        ("\x00\x1b\x7f", 10, "\ufffd\ufffd\ufffd"),
        ("a & b", 10, "a &amp; b"),
        (None, 10, ""),
        (2.5, 10, "2.5"),
    ],
)
def test_cells_are_capped_then_escaped(text: object, limit: int, cell: str) -> None:
    """Model output cannot break a table, open HTML or render markdown; it is cut before it is scanned."""
    assert md_text(text, limit) == cell


def test_a_huge_response_takes_bounded_time() -> None:
    text = "|<a>\n" * 2_000_000  # 10 MB of the worst characters
    start = time.perf_counter()
    cell = md_text(text, 400)
    assert time.perf_counter() - start < 0.1 and len(cell) < 2000
