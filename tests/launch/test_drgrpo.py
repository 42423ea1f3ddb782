"""configs/{legal,safety}_grpo_drgrpo.yaml: the recipe's GRPO config with exactly Dr. GRPO's switches changed; they
pass verl's validate_config and (legal) the preflight."""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf

from recipes.launch.commands import compose_config
from recipes.launch.preflight import FAIL, run_preflight


def _drgrpo(response_budget: int, names: tuple[str, str]) -> dict[str, tuple[Any, Any]]:
    """The keys a Dr. GRPO variant changes: (base value, variant value)."""
    return {
        "algorithm.norm_adv_by_std_in_grpo": (True, False),
        "actor_rollout_ref.actor.loss_agg_mode": ("token-mean", "seq-mean-token-sum-norm"),
        "actor_rollout_ref.actor.loss_scale_factor": (None, response_budget),
        "actor_rollout_ref.actor.use_kl_loss": (True, False),
        "trainer.experiment_name": names,
        # verl's critic section interpolates the actor's two loss keys (the critic is off: adv_estimator grpo).
        "critic.loss_agg_mode": ("token-mean", "seq-mean-token-sum-norm"),
        "critic.loss_scale_factor": (None, response_budget),
    }


# (base config, variant, data.max_response_length, (base run name, variant run name))
VARIANTS = [
    ("legal_grpo", "legal_grpo_drgrpo", 2048, ("legal-qwen2.5-7b", "legal-drgrpo-qwen2.5-7b")),
    (
        "safety_grpo",
        "safety_grpo_drgrpo",
        1024,
        ("safety-qwen2.5-7b-instruct", "safety-drgrpo-qwen2.5-7b-instruct"),
    ),
]
PAIRS = pytest.mark.parametrize(
    ("base_name", "variant_name", "budget", "names"), VARIANTS, ids=[v[1] for v in VARIANTS]
)


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


@PAIRS
def test_differs_from_its_recipe_only_by_the_drgrpo_switches(
    base_name: str, variant_name: str, budget: int, names: tuple[str, str]
) -> None:
    """Every resolved key equal to the recipe's GRPO config except the bias switches, the KL loss and the run name;
    the dependent paths (checkpoints, rollouts) follow the new run name."""
    base = _flat(OmegaConf.to_container(compose_config(base_name), resolve=True))
    variant = _flat(OmegaConf.to_container(compose_config(variant_name), resolve=True))
    assert base.keys() == variant.keys()
    changed = {k: (base[k], variant[k]) for k in base if base[k] != variant[k]}
    follows_name = {k for k in changed if isinstance(variant[k], str) and names[1] in variant[k]}
    assert {k: v for k, v in changed.items() if k not in follows_name - {"trainer.experiment_name"}} == _drgrpo(
        budget, names
    )
    assert "trainer.default_local_dir" in follows_name


@PAIRS
def test_loss_scale_factor_follows_the_response_budget(
    base_name: str, variant_name: str, budget: int, names: tuple[str, str]
) -> None:
    """The constant normalizer is data.max_response_length, also when that is overridden."""
    cfg = compose_config(variant_name, ["data.max_response_length=512"])
    assert cfg.actor_rollout_ref.actor.loss_scale_factor == 512


@PAIRS
def test_no_reference_policy_is_needed(base_name: str, variant_name: str, budget: int, names: tuple[str, str]) -> None:
    """Without the KL loss (and no KL in the reward) verl computes no reference log-probs."""
    from verl.trainer.ppo.utils import need_reference_policy

    assert need_reference_policy(compose_config(base_name)) is True
    assert need_reference_policy(compose_config(variant_name)) is False


@PAIRS
def test_passes_verls_validate_config(base_name: str, variant_name: str, budget: int, names: tuple[str, str]) -> None:
    """verl.utils.config.validate_config accepts the variant; it checks the loss mode (ActorConfig), so a wrong one
    fails there."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    cfg = compose_config(variant_name)
    validate_config(cfg, need_reference_policy(cfg), need_critic(cfg))
    bad = compose_config(variant_name, ["actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-norm"])
    with pytest.raises(Exception, match="Invalid loss_agg_mode"):  # hydra wraps it in InstantiationException
        validate_config(bad, need_reference_policy(bad), need_critic(bad))


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
