"""configs/safety_grpo*.yaml compose on verl 0.9.1's ppo_trainer, pass validate_config, and their batches split."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from data.domains.safety.dimensions import DIMENSIONS
from data.domains.safety.gold import check_gold, ground_truth_json
from data.domains.safety.prompt import gold_response
from rewards.safety import compute_score, get_options, max_score

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"
CONFIGS = ("safety_grpo", "safety_grpo_ngram", "safety_grpo_drgrpo")
LEGACY_TOP_LEVEL = {"custom_reward_function", "reward_model", "sandbox_fusion"}


def compose(name: str, overrides: tuple[str, ...] = ()):
    """Compose configs/<name>.yaml as the trainer's Hydra main does (verl's config dir as a file search path)."""
    import verl
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    verl_configs = pathlib.Path(verl.__file__).parent / "trainer" / "config"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return hydra_compose(config_name=name, overrides=[f"hydra.searchpath=[file://{verl_configs}]", *overrides])


def batch_problems(cfg) -> list[str]:
    """Every batch split verl asserts without dynamic batch sizes: step, actor mini/micro, rollout and ref log-probs."""
    actor, rollout, ref = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout, cfg.actor_rollout_ref.ref
    batch, n = int(cfg.data.train_batch_size), int(rollout.n)
    gpus = int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes)
    problems = []
    if (batch * n) % gpus:
        return [f"{batch} x {n} responses do not divide over {gpus} GPUs"]
    per_gpu_step = batch * n // gpus
    mini = int(actor.ppo_mini_batch_size)
    if mini > batch or batch % mini:
        problems.append(f"mini-batch {mini} does not split the batch {batch}")
    if (mini * n) % gpus or (mini * n // gpus) % int(actor.ppo_micro_batch_size_per_gpu):
        problems.append(f"actor: {mini * n / gpus} per GPU per update vs micro {actor.ppo_micro_batch_size_per_gpu}")
    for name, micro in (
        ("rollout", rollout.log_prob_micro_batch_size_per_gpu),
        ("ref", ref.log_prob_micro_batch_size_per_gpu),
    ):
        if per_gpu_step % int(micro):
            problems.append(f"{name} log-prob: {per_gpu_step} per GPU vs micro {micro}")
    if gpus % int(rollout.tensor_model_parallel_size):
        problems.append("tensor parallel size does not divide the GPUs")
    return problems


@pytest.mark.parametrize("name", CONFIGS)
def test_composes_resolves_and_passes_verl_validate_config(name):
    """Composition, full resolution, verl's validate_config, and every batch split."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    cfg = compose(name)
    OmegaConf.to_container(cfg, resolve=True)
    validate_config(cfg, need_reference_policy(cfg), need_critic(cfg))
    assert batch_problems(cfg) == []
    assert cfg.algorithm.adv_estimator == "grpo" and cfg.actor_rollout_ref.rollout.name == "vllm"
    assert cfg.reward.custom_reward_function.path == "rewards/safety.py"
    assert (REPO / cfg.reward.custom_reward_function.path).is_file()


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (("data.train_batch_size=13",), "do not divide"),
        (("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=3",), "actor"),
        (("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=5",), "rollout log-prob"),
        (("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=6",), "ref log-prob"),
    ],
)
def test_batch_check_catches_each_bad_split(overrides, problem):
    """The arithmetic check above is not vacuous: each broken split is named."""
    problems = batch_problems(compose("safety_grpo", overrides))
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("name", "gpus", "per_gpu", "scorer", "judge_mode"),
    [("safety_grpo", 7, 16, "judge", "external"), ("safety_grpo_ngram", 8, 16, "ngram", "none")],
)
def test_recipe_values(name, gpus, per_gpu, scorer, judge_mode):
    """One 8-GPU node: 7 train + judge on GPU 7, or 8 train without a judge; an instruct policy; own run names."""
    cfg = compose(name)
    assert cfg.trainer.n_gpus_per_node == gpus
    assert cfg.data.train_batch_size * cfg.actor_rollout_ref.rollout.n // gpus == per_gpu
    assert cfg.reward.custom_reward_function.reward_kwargs.reasoning_scorer == scorer
    assert cfg.judge.mode == judge_mode and cfg.judge.gpus == "7"
    assert cfg.actor_rollout_ref.model.path.endswith("-Instruct")
    assert (
        "custom_chat_template" not in cfg.actor_rollout_ref.model
        or not cfg.actor_rollout_ref.model.custom_chat_template
    )
    assert compose("safety_grpo").trainer.experiment_name != compose("safety_grpo_ngram").trainer.experiment_name


@pytest.mark.parametrize("name", CONFIGS)
def test_reward_kwargs_are_accepted_and_gold_scores_the_maximum(name, monkeypatch):
    """The YAML's reward_kwargs parse in rewards/safety.py; with the n-gram scorer a gold answer scores the max."""
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    cfg = compose(name)
    kwargs = OmegaConf.to_container(cfg.reward.custom_reward_function.reward_kwargs, resolve=True)
    if "ngram_reference" in kwargs:  # the n-gram scorer ranks against the training data: prepared ones are not here
        assert kwargs["ngram_reference"] == cfg.data.train_files
        kwargs["ngram_reference"] = "data/samples/safety_sample.jsonl"
    options = get_options(kwargs)
    assert max_score(options) == 5.0
    kwargs["reasoning_scorer"] = "ngram"  # no judge server here
    gold = check_gold({**dict.fromkeys(DIMENSIONS, 100), "商业违规": 35}, "含有夸大宣传。")
    out = asyncio.run(
        compute_score("safety", gold_response(gold.score_map, gold.reasoning), ground_truth_json(gold), **kwargs)
    )
    assert out["score"] == 5.0


@pytest.mark.parametrize(
    "path", ["safety_grpo.yaml", "safety_grpo_ngram.yaml", "base/safety_grpo.yaml", "base/judge.yaml"]
)
def test_no_legacy_reward_keys(path):
    """None of the YAML sets the top-level reward keys verl 0.9.1 silently ignores."""
    data = yaml.safe_load((CONFIG_DIR / path).read_text(encoding="utf-8")) or {}
    assert not LEGACY_TOP_LEVEL & set(data)


@pytest.mark.parametrize("name", CONFIGS)
def test_trainer_prints_the_job_config(name):
    """`python -m verl.trainer.main_ppo --config-path=$PWD/configs --config-name=NAME --cfg job` exits 0."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "verl.trainer.main_ppo",
            f"--config-path={CONFIG_DIR}",
            f"--config-name={name}",
            "--cfg",
            "job",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = yaml.safe_load(proc.stdout)
    assert printed["reward"]["custom_reward_function"]["path"] == "rewards/safety.py"
