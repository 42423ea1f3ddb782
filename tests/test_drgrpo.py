"""configs/legal_grpo_drgrpo.yaml: legal_grpo with exactly Dr. GRPO's switches changed, and it passes the preflight."""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf

from recipes.commands import compose_config
from recipes.preflight import FAIL, run_preflight

DRGRPO = {
    "algorithm.norm_adv_by_std_in_grpo": (True, False),
    "actor_rollout_ref.actor.loss_agg_mode": ("token-mean", "seq-mean-token-sum-norm"),
    "actor_rollout_ref.actor.loss_scale_factor": (None, 2048),
    "actor_rollout_ref.actor.use_kl_loss": (True, False),
    "trainer.experiment_name": ("legal-qwen2.5-7b", "legal-drgrpo-qwen2.5-7b"),
    # verl's critic section interpolates the actor's two loss keys (the critic is off: adv_estimator grpo).
    "critic.loss_agg_mode": ("token-mean", "seq-mean-token-sum-norm"),
    "critic.loss_scale_factor": (None, 2048),
}


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def test_differs_from_legal_grpo_only_by_the_drgrpo_switches() -> None:
    """Every resolved key equal to legal_grpo's except the bias switches, the KL loss and the run name; the
    dependent paths (checkpoints, rollouts) follow the new run name."""
    base = _flat(OmegaConf.to_container(compose_config("legal_grpo"), resolve=True))
    variant = _flat(OmegaConf.to_container(compose_config("legal_grpo_drgrpo"), resolve=True))
    assert base.keys() == variant.keys()
    changed = {k: (base[k], variant[k]) for k in base if base[k] != variant[k]}
    follows_name = {k for k in changed if isinstance(variant[k], str) and "legal-drgrpo-qwen2.5-7b" in variant[k]}
    assert {k: v for k, v in changed.items() if k not in follows_name - {"trainer.experiment_name"}} == DRGRPO
    assert "trainer.default_local_dir" in follows_name


def test_loss_scale_factor_follows_the_response_budget() -> None:
    """The constant normalizer is data.max_response_length, also when that is overridden."""
    cfg = compose_config("legal_grpo_drgrpo", ["data.max_response_length=1024"])
    assert cfg.actor_rollout_ref.actor.loss_scale_factor == 1024


def test_no_reference_policy_is_needed() -> None:
    """Without the KL loss (and no KL in the reward) verl computes no reference log-probs."""
    from verl.trainer.ppo.utils import need_reference_policy

    assert need_reference_policy(compose_config("legal_grpo")) is True
    assert need_reference_policy(compose_config("legal_grpo_drgrpo")) is False


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The shipped sample prepared by data.prepare; overrides pointing the config at it."""
    from data.prepare import main as prepare

    out = tmp_path_factory.mktemp("prepared")
    assert prepare(["--source", "cail2018", "--input", "data/samples/cail2018_sample.jsonl", "--output", str(out)]) == 0
    return [f"data.train_files={out}/train.parquet", f"data.val_files={out}/test.parquet"]


def test_passes_the_preflight(sample_data: list[str]) -> None:
    """The legal recipe's preflight (verl validate_config, batch, reward on gold samples): no FAIL."""
    results = run_preflight("legal_grpo_drgrpo", sample_data, dry_run=True, environ={"WANDB_MODE": "offline"})
    assert [r for r in results if r.status == FAIL] == []
    assert {"verl validate_config", "advantage estimator"} <= {r.name for r in results}
