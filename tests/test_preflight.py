"""Preflight: passes on the default config with the shipped sample; each broken launch fails with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.judge_fixtures import judge_server  # noqa: F401 - fixture

from recipes.preflight import FAIL, PASS, WARN, CheckResult, format_table, run_preflight

OK_ENV = {"WANDB_MODE": "offline"}


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The shipped sample prepared by data.prepare; overrides pointing the config at it."""
    from data.prepare import main as prepare

    out = tmp_path_factory.mktemp("prepared")
    assert prepare(["--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl", "--output", str(out)]) == 0
    return [f"data.train_files={out}/train.parquet", f"data.val_files={out}/test.parquet"]


def _fails(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status == FAIL]


def test_default_config_passes_with_sample_data(sample_data: list[str]) -> None:
    """No failure; one gold sample per task is scored (rules mode, no judge running); judge reported as a warning."""
    results = run_preflight("legal_grpo", sample_data, dry_run=False, environ=OK_ENV, gpus=8)
    assert _fails(results) == []
    scored = [r.message for r in results if r.name == "reward function"]
    assert [m.split(":")[0] for m in scored] == ["legal/article", "legal/charge", "legal/term", "legal/verdict"]
    assert [m for m in scored if m.startswith("legal/term")] == [
        "legal/term: gold answer scores 0 (0 is the best term score: no error)"
    ]
    assert [r.status for r in results if r.name == "judge endpoint"] == [WARN]
    assert {r.name for r in results} >= {"verl validate_config", "advantage estimator", "KL type", "reward manager"}


@pytest.mark.parametrize(
    ("overrides", "check", "needle"),
    [
        pytest.param(["data.train_batch_size=5"], "batch", "80 responses do not divide over 7", id="batch-5-on-7"),
        pytest.param(["+reward_model.enable=true"], "legacy reward keys", "reward_model.enable=True", id="legacy-rm"),
        pytest.param(
            ["+custom_reward_function.path=rewards/legal.py"], "legacy reward keys", "custom_reward_function.path",
            id="legacy-crf",
        ),
        pytest.param(["data.val_files=/nonexistent/test.parquet"], "data", "does not exist", id="missing-data"),
        pytest.param(["algorithm.adv_estimator=grpo_typo"], "advantage estimator", "grpo_typo", id="bad-adv"),
        pytest.param(["actor_rollout_ref.actor.kl_loss_type=k9"], "KL type", "kl_loss_type=k9", id="bad-kl"),
        pytest.param(["reward.reward_manager.name=nope"], "reward manager", "nope", id="unknown-manager"),
        pytest.param(
            ["actor_rollout_ref.actor.ppo_mini_batch_size=14"], "batch", "ppo_mini_batch_size=14", id="mini-gt-batch"
        ),
        pytest.param(
            ["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=3"], "micro batches",
            "actor update (per mini batch): 16 responses per GPU do not split into micro-batches of 3", id="micro"
        ),
        pytest.param(
            ["actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=5"], "micro batches",
            "old log-prob: 16 responses per GPU do not split into micro-batches of 5 (verl asserts", id="rollout-micro"
        ),
        pytest.param(
            ["actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=6"], "micro batches",
            "set actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu to a divisor of 16 (1, 2, 4, 8, 16)",
            id="ref-micro"
        ),
        pytest.param(
            ["actor_rollout_ref.rollout.log_prob_use_dynamic_bsz=true"], "micro batches",
            "actor.use_dynamic_bsz=False but rollout.log_prob_use_dynamic_bsz=True: verl's actor worker asserts",
            id="dynamic-mismatch"
        ),
        pytest.param(
            ["reward.reward_model.enable=true", "reward.reward_model.model_path=x",
             "reward.reward_model.rollout.name=vllm", "reward.reward_model.enable_resource_pool=true"],
            "verl-served judge",
            "free_cache_engine=true with enable_resource_pool=true: verl puts the judge to sleep", id="sleeping-judge"
        ),
        pytest.param(["actor_rollout_ref.rollout.tensor_model_parallel_size=2"], "batch", "does not divide 7",
                     id="tp-2-on-7"),
        pytest.param(["reward.reward_model.enable=true", "reward.reward_model.model_path=x"], "verl-served judge",
                     "rollout.name", id="verl-judge-without-rollout-name"),
        pytest.param(["judge.mode=none"], "judge", "needs a judge", id="judge-mode-none-with-judge-reward"),
        pytest.param(["trainer.use_v1=false"], "trainer", "v0 trainer", id="v0-trainer"),
        pytest.param(["reward.custom_reward_function.path=rewards/nope.py"], "reward function", "rewards/nope.py",
                     id="reward-path"),
        pytest.param(["data.train_batch_size=x"], "batch", "invalid literal for int()", id="not-a-number"),
        pytest.param(["data.no_such_key=1"], "compose", "does not compose", id="not-composing"),
        pytest.param(["actor_rollout_ref.rollout.agent.agent_loop_manager_class="
                      "verl.experimental.agent_loop.AgentLoopManager"], "agent loop", "does not extend verl's "
                     "AgentLoopManagerTQ", id="v0-agent-loop-manager-under-v1"),
        pytest.param(["actor_rollout_ref.rollout.agent.agent_loop_manager_class=recipes.legal.nope.Manager"],
                     "agent loop", "does not import", id="agent-loop-manager-missing"),
    ],
)  # fmt: skip
def test_broken_launch_fails_with_one_line(
    sample_data: list[str], overrides: list[str], check: str, needle: str
) -> None:
    """Each failure names what is wrong and how to fix it, on one line."""
    results = run_preflight("legal_grpo", [*sample_data, *overrides], environ=OK_ENV, gpus=8)
    fails = _fails(results)
    assert {r.name for r in fails} == {check}
    lines = [r.line() for r in fails]
    assert all("\n" not in line and " — " in line for line in lines), lines
    assert any(needle in line for line in lines), lines


@pytest.mark.parametrize(
    ("dry_run", "gpus", "env", "expected"),
    [
        pytest.param(False, 0, OK_ENV, {"GPUs": FAIL, "wandb": PASS}, id="no-gpu"),
        pytest.param(True, 0, OK_ENV, {"GPUs": WARN, "wandb": PASS}, id="no-gpu-dry-run"),
        pytest.param(False, 7, OK_ENV, {"GPUs": FAIL, "wandb": PASS}, id="judge-gpu-missing"),
        pytest.param(False, 8, {}, {"GPUs": PASS, "wandb": FAIL}, id="no-wandb-key"),
        pytest.param(True, 8, {}, {"GPUs": PASS, "wandb": WARN}, id="no-wandb-key-dry-run"),
        pytest.param(False, 8, {"WANDB_API_KEY": "k"}, {"GPUs": PASS, "wandb": PASS}, id="wandb-key"),
    ],
)  # fmt: skip
def test_gpus_and_wandb(sample_data: list[str], dry_run: bool, gpus: int, env: dict, expected: dict) -> None:
    """7 training + 1 judge GPU are needed; a wandb key or offline mode; on a CPU dry run both only warn."""
    results = run_preflight(
        "legal_grpo", sample_data, dry_run=dry_run, environ={"NETRC": "/nonexistent", **env}, gpus=gpus
    )
    assert {r.name: r.status for r in results if r.name in expected} == expected


def test_rules_config_needs_no_judge_and_eight_gpus(sample_data: list[str]) -> None:
    """The rules variant passes with 8 GPUs and no judge at all."""
    results = run_preflight("legal_grpo_rules", sample_data, environ=OK_ENV, gpus=8)
    assert _fails(results) == []
    assert [r.message for r in results if r.name == "judge endpoint"] == ["rules mode: no judge needed"]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(
            ["actor_rollout_ref.actor.use_dynamic_bsz=true",
             "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz=true",
             "actor_rollout_ref.ref.log_prob_use_dynamic_bsz=true",
             "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=5",
             "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=5",
             "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=5"],
            id="dynamic-bsz-skips-micro-checks",
        ),
        pytest.param(
            ["data.train_batch_size=14", "actor_rollout_ref.actor.ppo_mini_batch_size=7"], id="two-mini-batches"
        ),
    ],
)  # fmt: skip
def test_micro_batches_that_split_pass(sample_data: list[str], overrides: list[str]) -> None:
    """Dynamic batch size needs no divisibility; a step of two mini batches still splits (8 per GPU in micro 4/8)."""
    results = run_preflight("legal_grpo", [*sample_data, *overrides], environ=OK_ENV, gpus=8)
    assert _fails(results) == []
    assert [r.status for r in results if r.name == "micro batches"] == [PASS]


def test_multinode_loopback_judge_fails(sample_data: list[str]) -> None:
    """Reward workers on other nodes cannot reach 127.0.0.1."""
    results = run_preflight("legal_grpo", sample_data, environ={**OK_ENV, "NNODES": "2"}, gpus=8)
    assert [r.name for r in _fails(results)] == ["judge"]
    assert "loopback" in _fails(results)[0].message


def test_multinode_without_shared_dir_fails(tmp_path: Path) -> None:
    """${oc.env:LEGAL_SHARED_DIR} unset: one line naming the variable."""
    results = run_preflight("legal_grpo_multinode", [], environ=OK_ENV, gpus=8)
    fails = _fails(results)
    assert [r.name for r in fails] == ["interpolations"] and "LEGAL_SHARED_DIR" in fails[0].message


def test_judge_answering_scores_with_the_judge(sample_data: list[str], judge_server) -> None:  # noqa: F811
    """When the configured judge answers, the samples are scored by it (and the preflight says so)."""
    server = judge_server(reply="2")
    overrides = [
        *sample_data,
        f"reward.custom_reward_function.reward_kwargs.judge_base_url={server.base_url}",
        f"judge.model={server.model}",
    ]
    results = run_preflight("legal_grpo", overrides, environ=OK_ENV, gpus=8)
    assert _fails(results) == []
    assert [r.status for r in results if r.name == "judge endpoint"] == [PASS]
    assert any("(judge)" in r.message for r in results if r.name == "reward function")
    assert server.requests, "the judge got no chat request"


def test_table_lists_failures_again_one_per_line() -> None:
    """The summary ends with one line per failure."""
    table = format_table([CheckResult("a", PASS, "ok"), CheckResult("b", FAIL, "bad\nthing — fix it")])
    assert table.splitlines()[-1] == "FAIL b: bad thing — fix it"
    assert "1 failure(s), 0 warning(s), 2 check(s)" in table


def test_row_with_unscoreable_gold_fails_naming_the_row(sample_data: list[str], tmp_path: Path) -> None:
    """A row whose gold the reward would reject stops the launch before a reward worker stops the run."""
    import pyarrow.parquet as pq

    train = Path(sample_data[0].split("=", 1)[1])
    table = pq.read_table(train)
    rows = table.to_pylist()
    charge_row = next(i for i, r in enumerate(rows) if r["data_source"] == "legal/charge")
    rows[charge_row]["extra_info"]["charges"] = []
    rows[charge_row]["reward_model"]["ground_truth"] = ""
    broken = tmp_path / "train.parquet"
    pq.write_table(type(table).from_pylist(rows, schema=table.schema), broken)
    results = run_preflight("legal_grpo", [f"data.train_files={broken}", sample_data[1]], environ=OK_ENV, gpus=8)
    fails = [r.line() for r in _fails(results)]
    assert len(fails) == 1 and f"1 row(s) the reward cannot score (first: row {charge_row}: " in fails[0], fails
