"""recipes/evaluation/validation_match.py on hand-made trainer runs: every disagreement it exists to find is found and
named.

The trainer side is what verl writes (metrics.jsonl records with val-core/val-aux means, validation/<step>.jsonl
with input, output and the reward's values per row); the evaluation side is what recipes.evaluation.evaluate writes
(predictions.jsonl, scores.jsonl). Our own fictional rows; the prompt keys stand in for the rendered prompts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recipes.evaluation.validation_match import (
    MatchInputError,
    compare,
    compared_keys,
    load_trainer_validation,
    split_metric,
)

SOURCE = "legal/charge"
# Three rows the trainer validated on: (index, prompt key, its greedy response, acc, score).
ROWS = [
    (0, "案情甲", "<answer>盗窃罪</answer>", 1.0, 2.0),
    (1, "案情乙", "<answer>诈骗罪</answer>", 0.0, -2.0),
    (2, "案情丙", "\n\n\n", 0.0, -3.0),
]
KEYS = {(SOURCE, i): key for i, key, *_ in ROWS}


def trainer_run(
    tmp_path: Path,
    rows: list[tuple[int, str, str, float, float]] = ROWS,
    step: int = 3,
    logged: dict[str, float] | None = None,
    cache_hit: float = 0.0,
) -> Path:
    """A trainer output directory: one training record, then the last validation's record and dump."""
    out = tmp_path / "run"
    (out / "validation").mkdir(parents=True)
    accs, scores = [r[3] for r in rows], [r[4] for r in rows]
    values = logged or {"acc": sum(accs) / len(accs), "score": sum(scores) / len(scores), "cache_hit": cache_hit}
    records = [
        {"step": step - 1, "data": {"timing_s/step": 1.0, "val-core/legal/charge/acc/mean@1": 0.5}},
        {"step": step, "data": {
            "timing_s/step": 1.0,
            "val-core/legal/charge/acc/mean@1": values["acc"],
            "val-aux/legal/charge/score/mean@1": values["score"],
            "val-aux/legal/charge/cache_hit/mean@1": values["cache_hit"],
            "val-aux/legal/charge/score/std@2": 9.0,
        }},
    ]  # fmt: skip
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    dump = [
        {"input": key, "output": text, "gts": "x", "score": score, "step": step, "reward": score, "acc": acc,
         "cache_hit": cache_hit}
        for _, key, text, acc, score in rows
    ]  # fmt: skip
    (out / "validation" / f"{step}.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in dump), encoding="utf-8"
    )
    return out


def evaluation(rows: list[tuple[int, str, str, float, float]] = ROWS, cache_hit: bool = True):
    """(predictions, scores) as recipes.evaluation.evaluate writes them for these rows."""
    predictions = [{"index": i, "data_source": SOURCE, "response": text, "sample": 0} for i, _, text, *_ in rows]
    scores = [
        {"line": n + 1, "index": i, "data_source": SOURCE, "sample": 0, "acc": acc, "score": score,
         "format_ok": True, "cache_hit": cache_hit}
        for n, (i, _, _, acc, score) in enumerate(rows)
    ]  # fmt: skip
    return predictions, scores


def test_identical_generations_reproduce_the_logged_numbers(tmp_path: Path) -> None:
    """The same responses read the same way: every check holds and the per-task numbers are the logged ones."""
    trainer = load_trainer_validation(trainer_run(tmp_path))
    match = compare(trainer, KEYS, *evaluation())
    assert match.ok, match.problems
    assert (match.rows, match.identical, match.step) == (3, 3, 3)
    assert match.tasks[SOURCE]["acc"] == {"trainer": 1 / 3, "evaluate": 1 / 3, "delta": 0.0, "allowed": 1e-6}
    assert set(match.tasks[SOURCE]) == {"acc", "score"}  # cache_hit is operational; "reward" is not in scores.jsonl


@pytest.mark.parametrize(
    ("change", "share", "problem"),
    [
        # a longer answer (another stop rule): one of three differs, none allowed
        ({1: ("<answer>诈骗罪</answer><answer>", 0.0, -2.0)}, 0.0, "1 of 3 greedy responses differ"),
        # the same difference is within an allowed share, and its acc/score stay explainable
        ({1: ("<answer>诈骗罪</answer><answer>", 0.0, -2.0)}, 0.34, None),
        # a changed row that now earns full marks moves acc by 1/3 and score by 5/3: what one changed row of three
        # can explain (1/3 of each key's range over both sides: 1 and 5)
        ({2: ("<answer>盗窃罪</answer>", 1.0, 2.0)}, 0.34, None),
    ],
)
def test_changed_generations(tmp_path: Path, change: dict[int, Any], share: float, problem: str | None) -> None:
    """A differing greedy response counts against max_changed_share and names the row with both texts."""
    trainer = load_trainer_validation(trainer_run(tmp_path))
    rows = [(i, key, *change[i]) if i in change else (i, key, text, acc, score) for i, key, text, acc, score in ROWS]
    match = compare(trainer, KEYS, *evaluation(rows), max_changed_share=share)
    assert match.identical == 2
    assert match.changed[0]["index"] == next(iter(change))
    if problem is None:
        assert match.ok, match.problems
    else:
        assert any(problem in p for p in match.problems), match.problems


def test_reward_read_differently_on_an_identical_answer(tmp_path: Path) -> None:
    """Same response, another acc: the evaluation reads answers differently — named with the row and the key."""
    trainer = load_trainer_validation(trainer_run(tmp_path))
    predictions, scores = evaluation()
    scores[0]["acc"] = 0.0
    match = compare(trainer, KEYS, predictions, scores)
    assert not match.ok
    assert match.reward_mismatches == [
        {"data_source": SOURCE, "index": 0, "key": "acc", "evaluate": 0.0, "trainer": 1.0}
    ]
    assert any("reads answers differently" in p for p in match.problems)
    assert any(p.startswith("legal/charge acc: evaluate 0.000000 vs trainer 0.333333") for p in match.problems)


def test_logged_number_that_the_rows_do_not_give(tmp_path: Path) -> None:
    """Identical rows but a logged mean they do not average to: a per-task disagreement beyond the tolerance."""
    run = trainer_run(tmp_path, logged={"acc": 0.5, "score": -1.0, "cache_hit": 0.0})
    match = compare(load_trainer_validation(run), KEYS, *evaluation())
    assert [p for p in match.problems if "acc" in p] == [
        "legal/charge acc: evaluate 0.333333 vs trainer 0.500000 (allowed 0.000001 with 0/3 changed rows)"
    ]


def test_another_prompt_rendering_finds_no_trainer_row(tmp_path: Path) -> None:
    """A row whose rendered prompt is not among the trainer's inputs (another template): named, and the trainer row
    left over is counted too."""
    trainer = load_trainer_validation(trainer_run(tmp_path))
    keys = {**KEYS, (SOURCE, 2): "system\n案情丙"}
    match = compare(trainer, keys, *evaluation())
    assert match.unmatched == [{"data_source": SOURCE, "index": 2, "prompt": "system\n案情丙"}]
    assert any("evaluation renders another prompt" in p for p in match.problems)
    assert "1 validation row(s) of the trainer were not evaluated" in match.problems


def test_operational_keys_are_not_compared(tmp_path: Path) -> None:
    """cache_hit differs between the two runs (a cold cache in evaluation): not a disagreement."""
    trainer = load_trainer_validation(trainer_run(tmp_path, cache_hit=1.0))
    assert compare(trainer, KEYS, *evaluation(cache_hit=False)).ok
    assert compared_keys({"acc": 1, "judge_latency_ms": 2, "judge_called": 1, "reasoning_failed": 0, "mae": 3}) == [
        "acc",
        "mae",
    ]


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("val-core/legal/charge/acc/mean@1", ("legal/charge", "acc")),
        ("val-aux/safety/within5/mean@1", ("safety", "within5")),
        ("val-aux/safety/within5/std@4", None),
        ("val-core/acc/mean@1", None),
        ("critic/score/mean", None),
    ],
)
def test_split_metric(key: str, parts: tuple[str, str] | None) -> None:
    """Data sources may hold a slash; only mean@1 values of val-core / val-aux are per-task numbers."""
    assert split_metric(key) == parts


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda run: (run / "metrics.jsonl").write_text('{"step": 1, "data": {"timing_s/step": 1}}\n'),
            "no validation",
        ),
        (lambda run: (run / "validation" / "3.jsonl").unlink(), "set trainer.validation_data_dir"),
        (lambda run: (run / "validation" / "3.jsonl").write_text("[1]\n"), "3.jsonl:1: not a JSON object"),
    ],
)
def test_unusable_trainer_output_is_named(tmp_path: Path, mutate: Any, message: str) -> None:
    """Missing metrics, a missing dump or a bad line: an error naming the file."""
    run = trainer_run(tmp_path)
    mutate(run)
    with pytest.raises(MatchInputError, match=message):
        load_trainer_validation(run)
