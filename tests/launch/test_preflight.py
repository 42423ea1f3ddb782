"""Preflight: passes on the default config with the shipped sample; each broken launch fails with one line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from helpers.judge_fixtures import judge_server  # noqa: F401 - fixture

from recipes.launch.checks import reward_kwargs
from recipes.launch.commands import compose_config
from recipes.launch.preflight import FAIL, PASS, WARN, CheckResult, format_table, run_preflight
from recipes.launch.preflight_keys import check_added_keys
from recipes.recipe import KNOWN_RECIPES, load_recipe

OK_ENV = {"WANDB_MODE": "offline"}


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The shipped sample prepared by data.prepare; overrides pointing the config at it."""
    from data.prepare import main as prepare

    out = tmp_path_factory.mktemp("prepared")
    assert prepare(["--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl", "--output", str(out)]) == 0
    return [f"data.train_files={out}/train.parquet", f"data.val_files={out}/test.parquet"]


@pytest.fixture(scope="module")
def safety_data(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The shipped safety sample prepared by data.prepare; overrides pointing a safety config at it."""
    from data.prepare import main as prepare

    out = tmp_path_factory.mktemp("prepared-safety")
    assert prepare(["--source", "safety", "--input", "data/samples/safety_sample.jsonl", "--output", str(out)]) == 0
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
        pytest.param(["trainer.total_training_step=600"], "compose", "did you mean trainer.total_training_steps?",
                     id="typo-names-the-key"),
        pytest.param(["+trainer.total_training_step=600"], "added keys",
                     "did you mean trainer.total_training_steps? Set it without the +: "
                     "trainer.total_training_steps=600", id="typo-added-with-plus"),
        pytest.param(["++trainer.total_training_step=600"], "added keys", "did you mean trainer.total_training_steps?",
                     id="typo-added-with-plus-plus"),
        pytest.param(["+trainerr.total_training_steps=600"], "added keys",
                     "the config's top level does not have (verl never reads it) — did you mean "
                     "trainer.total_training_steps?", id="typo-in-the-section"),
        pytest.param(["+actor_rollout_ref.actor.optim.lrr=1e-6"], "added keys",
                     "did you mean actor_rollout_ref.actor.optim.lr?", id="typo-deep"),
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
    "added",
    [
        pytest.param("+reward.custom_reward_function.reward_kwargs.shaping_note=1", id="reward-kwargs"),
        pytest.param("+judge.note=ours", id="judge-section"),
        pytest.param("+recipe.note=ours", id="recipe-section"),
        pytest.param("+ray_kwargs.ray_init.num_gpus=1", id="ray-init-kwargs"),
        pytest.param("+actor_rollout_ref.model.override_config.attn_implementation=sdpa", id="hf-config-override"),
        pytest.param("+actor_rollout_ref.rollout.engine_kwargs.vllm.enforce_eager=true", id="engine-kwargs"),
        pytest.param("++trainer.total_training_steps=600", id="plus-plus-on-a-known-key"),
    ],
)
def test_keys_added_to_our_or_pass_through_sections_pass(added: str) -> None:
    """Our own recipe keys (reward_kwargs, judge, recipe) and dicts verl hands on whole take any new key."""
    base = compose_config("legal_grpo")
    assert [(r.status, r.name) for r in check_added_keys(base, [added])] == [(PASS, "added keys")]


def test_a_new_key_without_a_near_match_warns() -> None:
    """A key verl's section does not define and nothing near: a warning (verl may read keys its YAML lacks)."""
    (result,) = check_added_keys(compose_config("legal_grpo"), ["+trainer.brand_new_knob=1"])
    assert result.status == WARN and "trainer.brand_new_knob" in result.message
    assert "verl's trainer section does not define" in result.message


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
    assert [r.message for r in results if r.name == "judge endpoint"] == ["no judge needed (mode=rules)"]


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


@pytest.mark.parametrize(
    ("config", "data", "expected"),
    [
        pytest.param("legal_grpo", "sample_data", "legal/verdict: gold answer scores 2 (judge)", id="legal"),
        # grade 2 = full reasoning marks: the gold still scores the maximum
        pytest.param("safety_grpo", "safety_data", "safety: gold answer scores 5 (judge)", id="safety"),
    ],
)
def test_judge_answering_scores_with_the_judge(
    config: str,
    data: str,
    expected: str,
    request: pytest.FixtureRequest,
    judge_server,  # noqa: F811
) -> None:
    """When the configured judge answers, the samples are scored by it (and the preflight says so)."""
    server = judge_server(reply="2")
    overrides = [
        *request.getfixturevalue(data),
        f"reward.custom_reward_function.reward_kwargs.judge_base_url={server.base_url}",
        f"judge.model={server.model}",
    ]
    results = run_preflight(config, overrides, environ=OK_ENV, gpus=8)
    assert _fails(results) == []
    assert [r.status for r in results if r.name == "judge endpoint"] == [PASS]
    assert expected in [r.message for r in results if r.name == "reward function"]
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


# ------------------------------------------------------------------------------------- the safety recipe


def test_safety_config_passes_and_its_gold_answer_scores_the_maximum(safety_data: list[str]) -> None:
    """safety_grpo through the same checks: its recipe, its rows, its gold response scoring 5 (the reward's maximum:
    format 1 + keys 1 + 2 x closeness 1 + reasoning 1), offline with the n-gram scorer while no judge answers."""
    results = run_preflight("safety_grpo", safety_data, environ=OK_ENV, gpus=8)
    assert _fails(results) == []
    assert [r.message for r in results if r.name == "recipe"] == [
        "safety (recipes/safety/recipe.py, reward rewards/safety.py)"
    ]
    assert [r.message for r in results if r.name == "reward function"] == ["safety: gold answer scores 5"]
    (endpoint,) = [r for r in results if r.name == "judge endpoint"]
    assert endpoint.status == WARN and "samples scored offline (reasoning_scorer=ngram)" in endpoint.message
    assert [r.message.split(": ", 1)[1] for r in results if r.name == "data"] == [
        "64 rows (safety=64)",
        "16 rows (safety=16)",
    ]


def test_safety_ngram_config_needs_no_judge(safety_data: list[str]) -> None:
    """The no-judge variant: 8 training GPUs, no judge probed, gold still scores the maximum."""
    results = run_preflight("safety_grpo_ngram", safety_data, environ=OK_ENV, gpus=8)
    assert _fails(results) == []
    assert [r.message for r in results if r.name == "judge endpoint"] == ["no judge needed (reasoning_scorer=ngram)"]
    assert [r.message for r in results if r.name == "reward function"] == ["safety: gold answer scores 5"]


def test_safety_config_with_judge_mode_none_fails_naming_the_scorer(safety_data: list[str]) -> None:
    """reasoning_scorer=judge with no judge served: one line saying which kwarg to change."""
    results = run_preflight("safety_grpo", [*safety_data, "judge.mode=none"], environ=OK_ENV, gpus=8)
    (fail,) = _fails(results)
    assert fail.name == "judge" and fail.message.startswith("reward_kwargs reasoning_scorer=judge needs a judge")
    assert "reward.custom_reward_function.reward_kwargs.reasoning_scorer=ngram" in fail.message


def _rewrite(source: Path, target: Path, row: int, change) -> Path:
    """source parquet with one row changed by change(row_dict), written to target (same schema)."""
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    rows = table.to_pylist()
    change(rows[row])
    pq.write_table(type(table).from_pylist(rows, schema=table.schema), target)
    return target


def _drop_a_dimension(row: dict) -> None:
    gold = json.loads(row["reward_model"]["ground_truth"])
    del gold["scores"]["敏感词"]
    row["reward_model"]["ground_truth"] = json.dumps(gold, ensure_ascii=False)


def _legal_data_source(row: dict) -> None:
    row["data_source"] = "legal/charge"


@pytest.mark.parametrize(
    ("change", "check", "needle"),
    [
        pytest.param(_drop_a_dimension, "data", "1 row(s) the reward cannot score (first: row 5: ", id="bad-gold"),
        pytest.param(
            _legal_data_source, "recipe",
            "1 row(s) not of recipe safety (first: row 5: data_source 'legal/charge', which belongs to recipe legal)",
            id="legal-row",
        ),
    ],
)  # fmt: skip
def test_safety_row_the_reward_cannot_take_fails_naming_file_and_row(
    safety_data: list[str], tmp_path: Path, change, check: str, needle: str
) -> None:
    """A safety row with unusable gold, or a legal row in a safety config, stops the launch with file and row."""
    train = Path(safety_data[0].split("=", 1)[1])
    broken = _rewrite(train, tmp_path / "train.parquet", 5, change)
    results = run_preflight("safety_grpo", [f"data.train_files={broken}", safety_data[1]], environ=OK_ENV, gpus=8)
    fails = _fails(results)
    assert [r.name for r in fails] == [check], [r.line() for r in fails]
    assert fails[0].message.startswith(f"{broken}: ") and needle in fails[0].message, fails[0].message


def test_legal_data_in_a_safety_config_fails_naming_the_file(sample_data: list[str], safety_data: list[str]) -> None:
    """The legal sample as the safety config's validation set: the recipe check names the file, row 0 and the fix."""
    results = run_preflight("safety_grpo", [safety_data[0], sample_data[1]], environ=OK_ENV, gpus=8)
    fails = _fails(results)
    val = sample_data[1].split("=", 1)[1]
    assert [r.name for r in fails] == ["recipe"]
    assert fails[0].message.startswith(f"{val}: 56 row(s) not of recipe safety (first: row 0: data_source 'legal/")
    assert "python -m data.prepare --source safety" in fails[0].message


def test_unknown_recipe_name_fails_listing_the_known_ones(safety_data: list[str]) -> None:
    """recipe.name must name a recipes/<name>/ folder: one line, the known names, no reward scored."""
    results = run_preflight("safety_grpo", [*safety_data, "recipe.name=nope"], environ=OK_ENV, gpus=8)
    fails = _fails(results)
    assert [r.name for r in fails] == ["recipe"]
    assert "unknown recipe 'nope': expected one of legal, safety" in fails[0].message
    assert not [r for r in results if r.name == "reward function"]


@pytest.mark.parametrize("name", KNOWN_RECIPES)
def test_each_recipes_offline_reward_kwargs_call_no_judge(name: str) -> None:
    """What the preflight scores with while no judge answers must really leave the judge out, for every recipe."""
    recipe = load_recipe(name)
    base = reward_kwargs(compose_config(f"{name}_grpo"))
    assert recipe.uses_judge(base), f"{name}_grpo's reward is expected to call the judge"
    assert recipe.offline_reward_kwargs and not recipe.uses_judge({**base, **recipe.offline_reward_kwargs})


@pytest.mark.parametrize(
    ("config", "data", "override", "expected"),
    [
        pytest.param(
            "safety_grpo",
            "safety_data",
            "reward.custom_reward_function.reward_kwargs.exact_bonus=0.5",
            # 1 + 1 + 1 x (1 + 0.5) + 1 + 1 = 5.5 = max_score: still the best (issue 23: closeness weight 1, a
            # detection part, exact_bonus added to an exact key's 1)
            "safety: gold answer scores 5.5",
            id="safety-weights-changed-best-follows",
        ),
        pytest.param(
            "legal_grpo",
            "sample_data",
            "reward.custom_reward_function.reward_kwargs.lang_reward_weight=0.5",
            None,  # shaping on: the best is unknown, nothing to refuse
            id="legal-shaping-best-unknown",
        ),
    ],
)
def test_gold_score_is_compared_with_the_reward_best_under_the_configured_kwargs(
    config: str, data: str, override: str, expected: str | None, request: pytest.FixtureRequest
) -> None:
    """The best score follows the reward kwargs, so changing a weight never makes the gold check fail by itself."""
    results = run_preflight(config, [*request.getfixturevalue(data), override], environ=OK_ENV, gpus=8)
    assert _fails(results) == []
    messages = [r.message for r in results if r.name == "reward function"]
    assert all(r.status == PASS for r in results if r.name == "reward function")
    if expected:
        assert messages == [expected]


def test_gold_answer_below_the_best_fails_offline_and_warns_when_the_judge_graded_it(
    safety_data: list[str],
    sample_data: list[str],
    monkeypatch: pytest.MonkeyPatch,
    judge_server,  # noqa: F811
) -> None:
    """A gold response paid less than the reward's best: offline a FAIL (reward or gold response broken), judged a
    WARN pointing at the judge audit (the judge's grade of the gold itself, e.g. a judge replying 1 to the gold)."""
    import recipes.safety.recipe as safety_recipe

    broken = dataclasses.replace(safety_recipe.RECIPE, gold_response=lambda s, g, i, k: "<answer>{}</answer>")
    monkeypatch.setattr(safety_recipe, "RECIPE", broken)
    fails = _fails(run_preflight("safety_grpo_ngram", safety_data, environ=OK_ENV, gpus=8))
    assert [r.name for r in fails] == ["reward function"]
    assert "below the best 5" in fails[0].message and "cannot pay a perfect answer" in fails[0].message

    server = judge_server(reply="1")  # the judge grades the gold verdict 1 of 2
    overrides = [
        *sample_data,
        f"reward.custom_reward_function.reward_kwargs.judge_base_url={server.base_url}",
        f"judge.model={server.model}",
    ]
    results = run_preflight("legal_grpo", overrides, environ=OK_ENV, gpus=8)
    assert _fails(results) == []
    (verdict,) = [r for r in results if r.name == "reward function" and r.message.startswith("legal/verdict")]
    assert verdict.status == WARN and "below the best 2" in verdict.message
    assert "python -m recipes.legal.audit_judge" in verdict.message
