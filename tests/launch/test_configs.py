"""Every config composes on top of verl 0.9.1's ppo_trainer, carries the recipe's values and passes verl's checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from recipes.launch.commands import CONFIG_DIR, compose_config, launchable_configs
from recipes.launch.preflight import PASS, check_batch, check_legacy_reward_keys, check_micro_batches, check_verl_judge

CONFIGS = launchable_configs()
LEGACY_TOP_LEVEL = {"custom_reward_function", "reward_model", "sandbox_fusion"}


@pytest.fixture(autouse=True)
def _shared_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The multi-node config reads LEGAL_SHARED_DIR."""
    monkeypatch.setenv("LEGAL_SHARED_DIR", str(tmp_path))


def test_expected_config_files_exist() -> None:
    """The base and its variants are all there."""
    assert {
        "legal_grpo",
        "legal_grpo_rules",
        "legal_grpo_multinode",
        "legal_grpo_smoke",
        "legal_grpo_verl_pool",
    } <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_composes_resolves_and_passes_verl_validate_config(name: str) -> None:
    """Composition (with verl's real pkg:// search path), full resolution, verl's validate_config, our batch check."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    cfg = compose_config(name)
    OmegaConf.to_container(cfg, resolve=True)
    validate_config(cfg, need_reference_policy(cfg), need_critic(cfg))
    assert [r.status for r in check_batch(cfg)] == [PASS]
    micro = check_micro_batches(cfg)
    assert [r.status for r in micro] == [PASS], [r.line() for r in micro]
    assert all(r.status == PASS for r in check_verl_judge(cfg)), [r.line() for r in check_verl_judge(cfg)]
    assert [r.status for r in check_legacy_reward_keys(cfg)] == [PASS]
    assert cfg.judge.mode in ("external", "verl_pool", "none")


def test_launchable_configs_are_the_trainer_configs(tmp_path: Path) -> None:
    """Discovery: every top-level YAML over ppo_trainer (a new one too), never runtime_env / eval_sampling / base."""
    assert set(CONFIGS) >= {"legal_grpo", "legal_grpo_rules", "legal_grpo_multinode", "legal_grpo_smoke"}
    assert not {"runtime_env", "eval_sampling", "legal_grpo_base"} & set(CONFIGS)
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "legal_grpo.yaml").write_text("actor_rollout_ref: {}\n")
    (tmp_path / "safety_grpo.yaml").write_text("defaults:\n  - ppo_trainer\n  - _self_\n")
    (tmp_path / "runtime_env.yaml").write_text("env_vars: {}\n")
    assert launchable_configs(tmp_path) == ["safety_grpo"]


def test_every_config_has_its_own_run_name_and_checkpoint_dir() -> None:
    """Distinct trainer.experiment_name per launchable config: with resume_mode=auto a variant that inherited the
    default name would silently resume the default run's checkpoints (same default_local_dir)."""
    names = {name: compose_config(name).trainer for name in CONFIGS}
    experiment = {name: str(t.experiment_name) for name, t in names.items()}
    assert len(set(experiment.values())) == len(CONFIGS), experiment
    checkpoints = {name: str(t.default_local_dir) for name, t in names.items()}
    assert len(set(checkpoints.values())) == len(CONFIGS), checkpoints
    assert all(experiment[name] in checkpoints[name] for name in CONFIGS)
    assert all(t.resume_mode == "auto" for t in names.values())


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_no_legacy_reward_keys_in_yaml(path: Path) -> None:
    """No YAML sets the legacy top-level reward keys verl 0.9.1 silently ignores."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert not LEGACY_TOP_LEVEL & set(data)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("actor_rollout_ref.model.path", "Qwen/Qwen2.5-7B"),
        ("algorithm.adv_estimator", "grpo"),
        ("actor_rollout_ref.rollout.name", "vllm"),
        ("actor_rollout_ref.rollout.n", 16),
        ("data.train_batch_size", 7),
        ("actor_rollout_ref.actor.optim.lr", 3e-6),
        ("trainer.total_training_steps", 400),
        ("actor_rollout_ref.actor.use_kl_loss", True),
        ("actor_rollout_ref.actor.kl_loss_type", "low_var_kl"),
        ("actor_rollout_ref.actor.kl_loss_coef", 0.001),
        ("data.filter_overlong_prompts", True),
        ("data.train_files", "data/prepared/legal/train.parquet"),
        ("data.val_files", "data/prepared/legal/test.parquet"),
        ("reward.custom_reward_function.path", "rewards/legal.py"),
        ("reward.custom_reward_function.name", "compute_score"),
        ("reward.custom_reward_function.reward_kwargs.mode", "hybrid"),
        ("reward.custom_reward_function.reward_kwargs.judge_base_url", "http://127.0.0.1:8000/v1"),
        ("reward.custom_reward_function.reward_kwargs.judge_model", "Qwen/Qwen2.5-7B-Instruct"),
        ("reward.reward_manager.name", "naive"),
        ("trainer.logger", ["console", "wandb"]),
        ("trainer.n_gpus_per_node", 7),
        ("trainer.resume_mode", "auto"),
        ("trainer.val_before_train", True),
        ("trainer.test_freq", 25),
        ("trainer.save_freq", 50),
        ("trainer.project_name", "legal-grpo"),
        ("trainer.default_local_dir", "checkpoints/legal-grpo/legal-qwen2.5-7b"),
        ("judge.mode", "external"),
        ("judge.model", "Qwen/Qwen2.5-7B-Instruct"),
        ("judge.host", "127.0.0.1"),
        ("judge.gpus", "7"),
        ("judge.port", 8000),
    ],
)
def test_base_config_seed_values(key: str, expected: object) -> None:
    """The original recipe's choices are the base config's values."""
    cfg = _base()
    value = OmegaConf.select(cfg, key)
    value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    assert value == expected


@pytest.mark.parametrize(
    ("name", "key", "expected"),
    [
        ("legal_grpo_rules", "reward.custom_reward_function.reward_kwargs.mode", "rules"),
        ("legal_grpo_rules", "judge.mode", "none"),
        ("legal_grpo_rules", "trainer.n_gpus_per_node", 8),
        ("legal_grpo_smoke", "actor_rollout_ref.model.path", "Qwen/Qwen2.5-0.5B-Instruct"),
        ("legal_grpo_smoke", "trainer.n_gpus_per_node", 1),
        ("legal_grpo_smoke", "trainer.logger", ["console"]),
        ("legal_grpo_multinode", "trainer.nnodes", 2),
        ("legal_grpo_multinode", "actor_rollout_ref.rollout.n", 16),
        ("legal_grpo_verl_pool", "reward.reward_model.enable", True),
        ("legal_grpo_verl_pool", "reward.reward_model.enable_resource_pool", True),
        ("legal_grpo_verl_pool", "reward.reward_model.model_path", "Qwen/Qwen2.5-7B-Instruct"),
        ("legal_grpo_verl_pool", "reward.reward_model.rollout.name", "vllm"),
        ("legal_grpo_verl_pool", "trainer.experiment_name", "legal-verl-pool-qwen2.5-7b"),
        ("legal_grpo_verl_pool", "trainer.default_local_dir", "checkpoints/legal-grpo/legal-verl-pool-qwen2.5-7b"),
    ],
)
def test_variant_values(name: str, key: str, expected: object) -> None:
    """Variants change only what they are for; the rest comes from legal_grpo."""
    cfg = compose_config(name)
    value = OmegaConf.select(cfg, key)
    value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    assert value == expected
    assert cfg.algorithm.adv_estimator == "grpo"


def test_multinode_paths_follow_shared_dir(tmp_path: Path) -> None:
    """Multi-node data and checkpoints live under $LEGAL_SHARED_DIR (resolved where the job runs)."""
    cfg = compose_config("legal_grpo_multinode")
    assert cfg.data.train_files == f"{tmp_path}/data/train.parquet"
    assert cfg.trainer.default_local_dir.startswith(f"{tmp_path}/checkpoints/legal-grpo/")


@pytest.mark.parametrize(
    ("messages", "expected_user"),
    [
        pytest.param(
            [{"role": "user", "content": "案情：张某盗窃。请预测罪名。"}],
            "User: 案情：张某盗窃。请预测罪名。\n",
            id="user",
        ),
        pytest.param(
            [{"role": "system", "content": "你是法官。"}, {"role": "user", "content": "问题"}],
            "你是法官。\nUser: 问题\n",
            id="system+user",
        ),
    ],
)
def test_r1_zero_template_renders_with_a_real_tokenizer(tiny_tokenizer, messages: list, expected_user: str) -> None:
    """The custom template, applied the way verl applies it, ends inside the thinking block."""
    # Passed per call, as verl does with custom_chat_template: the session tokenizer stays unchanged for other tests.
    template = _base().actor_rollout_ref.model.custom_chat_template
    text = tiny_tokenizer.apply_chat_template(
        messages, chat_template=template, add_generation_prompt=True, tokenize=False
    )
    assert text.startswith("A conversation between User and Assistant.")
    assert "<think> </think>" in text and "<answer> </answer>" in text
    assert text.endswith(expected_user + "Assistant: <think>")


def test_trainer_hydra_main_points_at_configs() -> None:
    """recipes.trainer.main_ppo's default config path is this repo's configs/ (used under ray job submit)."""
    import recipes.trainer.main_ppo as main_ppo

    assert Path(main_ppo.CONFIG_DIR) == CONFIG_DIR


_BASE = {}


def _base():
    if "cfg" not in _BASE:
        _BASE["cfg"] = compose_config("legal_grpo")
    return _BASE["cfg"]
