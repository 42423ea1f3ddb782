"""CPU, offline checks of a launch before any GPU time is spent.

    python -m recipes.preflight --config legal_grpo [--dry-run] [hydra overrides...]

Composes the config exactly as the trainer will (a mistyped key: the known key it nearly spells), then checks: legacy
top-level reward keys; keys added with ``+`` inside verl's sections (recipes/launch/preflight_keys.py); interpolations
resolve;
verl's validate_config; what it misses (advantage estimator, KL types, reward manager, a verl-served judge, batch
arithmetic, v1 trainer); the chat template; the judge section; the recipe the config names (recipes/recipe.py);
data files, their row schema, that every row is the recipe's and its gold scoreable (recipes/launch/preflight_data.py);
the
reward function, loaded by path the way verl loads it, scoring the recipe's gold response for one row per
data_source (offline when no judge answers; recipes/launch/preflight_reward.py); GPUs against training + judge GPUs;
wandb
credentials. Every failure is one line: what is wrong — how to fix it.
With --dry-run (a CPU box), missing GPUs and wandb credentials are warnings. Exit 0 when nothing failed, else 1.
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import contextlib
import io
import logging
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipes.launch.checks import FAIL, PASS, WARN, CheckResult, one_line, reward_kwargs
from recipes.launch.commands import (
    DEFAULT_CONFIG,
    GRPO_TRAINERS,
    ConfigError,
    JudgeSpec,
    compose_config,
    hide_known_verl_noise,
    is_multi_node,
    judge_gpu_count,
    judge_urls,
    trainer_overrides,
)
from recipes.launch.preflight_data import check_data, check_recipe
from recipes.launch.preflight_keys import added_overrides, check_added_keys, did_you_mean
from recipes.launch.preflight_reward import check_reward, no_judge_kwargs
from recipes.recipe import Recipe

__all__ = ["FAIL", "PASS", "WARN", "CheckResult", "format_table", "main", "run_preflight"]

logger = logging.getLogger(__name__)

LEGACY_SECTIONS = ("custom_reward_function", "reward_model", "sandbox_fusion")
KL_TYPES = ("kl", "k1", "abs", "mse", "k2", "low_var_kl", "k3")
JUDGE_MODES = ("external", "verl_pool", "none")


# ------------------------------------------------------------------------------------------- config checks


def check_legacy_reward_keys(cfg: Any) -> list[CheckResult]:
    """Top-level custom_reward_function.* / reward_model.* / sandbox_fusion.* set to anything but null."""
    from omegaconf import OmegaConf

    found: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if OmegaConf.is_dict(node) or isinstance(node, Mapping):
            for key in node:
                walk(node[key], f"{prefix}.{key}")
        elif node is not None:
            found.append(f"{prefix}={node}")

    for section in LEGACY_SECTIONS:
        if section in cfg:
            walk(OmegaConf.to_container(cfg[section], resolve=False), section)
    if found:
        return [
            CheckResult(
                "legacy reward keys",
                FAIL,
                f"{', '.join(found)} is a legacy top-level key that verl 0.9.1 ignores (it falls back to its default "
                f"scorer) — move it under reward.* (e.g. reward.custom_reward_function.path, "
                f"reward.reward_model.enable)",
            )
        ]
    return [CheckResult("legacy reward keys", PASS, "none set")]


def check_resolves(cfg: Any) -> list[CheckResult]:
    """Every interpolation resolves (e.g. ${oc.env:LEGAL_SHARED_DIR})."""
    from omegaconf import OmegaConf

    try:
        OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:  # InterpolationResolutionError and friends
        hint = (
            "export the variable it names"
            if "oc.env" in str(exc) or "Environment variable" in str(exc)
            else ("fix the ${...} reference")
        )
        return [CheckResult("interpolations", FAIL, f"a config value does not resolve: {one_line(exc)} — {hint}")]
    return [CheckResult("interpolations", PASS, "all resolve")]


def check_verl_validate(cfg: Any) -> list[CheckResult]:
    """verl.utils.config.validate_config, as verl's main runs it (its success print is dropped: this check says it)."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            validate_config(cfg, need_reference_policy(cfg), need_critic(cfg))
    except Exception as exc:
        cause = exc.__cause__ or exc
        return [
            CheckResult(
                "verl validate_config",
                FAIL,
                f"{one_line(cause)} — fix the key it names (see verl/trainer/config/ppo_trainer.yaml)",
            )
        ]
    return [CheckResult("verl validate_config", PASS, "passes")]


def check_algorithm(cfg: Any) -> list[CheckResult]:
    """Advantage estimator and KL types verl knows (validate_config does not check them)."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    out = []
    adv = str(cfg.algorithm.adv_estimator)
    if adv not in ADV_ESTIMATOR_REGISTRY:
        out.append(
            CheckResult(
                "advantage estimator",
                FAIL,
                f"algorithm.adv_estimator={adv} is unknown to verl — use one of "
                f"{', '.join(sorted(ADV_ESTIMATOR_REGISTRY))} (grpo for this recipe)",
            )
        )
    else:
        out.append(CheckResult("advantage estimator", PASS, adv))
    for key, value in (
        ("actor_rollout_ref.actor.kl_loss_type", cfg.actor_rollout_ref.actor.kl_loss_type),
        ("algorithm.kl_penalty", cfg.algorithm.kl_penalty),
    ):
        base = str(value)[:-1] if str(value).endswith("+") else str(value)
        if base not in KL_TYPES:
            out.append(
                CheckResult(
                    "KL type",
                    FAIL,
                    f"{key}={value} is not a KL estimator verl implements — use one of {', '.join(KL_TYPES)} "
                    f"(optionally with a + suffix, e.g. k3+)",
                )
            )
    if not any(r.name == "KL type" for r in out):
        out.append(
            CheckResult(
                "KL type",
                PASS,
                f"kl_loss_type={cfg.actor_rollout_ref.actor.kl_loss_type} kl_penalty={cfg.algorithm.kl_penalty}",
            )
        )
    if not cfg.trainer.use_v1:
        out.append(
            CheckResult(
                "trainer",
                FAIL,
                "trainer.use_v1=false selects verl's deprecated v0 trainer, which recipes.main_ppo does not "
                "extend (no per-step reward metrics) — remove the override",
            )
        )
    return out


def check_reward_manager(cfg: Any) -> list[CheckResult]:
    """The reward manager resolves (registered name or importable module)."""
    manager = cfg.reward.reward_manager
    try:
        if manager.source == "register":
            import verl.experimental.reward_loop.reward_manager  # noqa: F401 - registers the built-in managers
            from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

            if manager.name not in REWARD_MANAGER:
                return [
                    CheckResult(
                        "reward manager",
                        FAIL,
                        f"reward.reward_manager.name={manager.name} is not a registered reward manager — use one of "
                        f"{', '.join(sorted(REWARD_MANAGER))} (naive for this recipe)",
                    )
                ]
        else:
            from verl.trainer.ppo.reward import resolve_reward_manager_cls

            resolve_reward_manager_cls(cfg)
    except Exception as exc:
        return [CheckResult("reward manager", FAIL, f"{one_line(exc)} — fix reward.reward_manager.*")]
    return [CheckResult("reward manager", PASS, f"{manager.source}:{manager.name}")]


def check_agent_loop(cfg: Any) -> list[CheckResult]:
    """A custom agent_loop_manager_class imports and, under the v1 trainer, extends verl's AgentLoopManagerTQ."""
    fqn = cfg.actor_rollout_ref.rollout.get("agent", {}).get("agent_loop_manager_class")
    if not fqn:
        return [CheckResult("agent loop", PASS, "verl's default manager")]
    from verl.trainer.ppo.v1 import AgentLoopManagerTQ
    from verl.utils.import_utils import load_class_from_fqn

    try:
        cls = load_class_from_fqn(fqn, "AgentLoopManager")
    except Exception as exc:
        return [
            CheckResult(
                "agent loop",
                FAIL,
                f"actor_rollout_ref.rollout.agent.agent_loop_manager_class={fqn} does not import ({one_line(exc)}) "
                "— fix the dotted path or set it to null",
            )
        ]
    if cfg.trainer.get("use_v1", True) and not (isinstance(cls, type) and issubclass(cls, AgentLoopManagerTQ)):
        return [
            CheckResult(
                "agent loop",
                FAIL,
                f"actor_rollout_ref.rollout.agent.agent_loop_manager_class={fqn} does not extend verl's "
                "AgentLoopManagerTQ: the v1 trainer would crash at the first generation — extend "
                "verl.trainer.ppo.v1.AgentLoopManagerTQ or set it to null",
            )
        ]
    return [CheckResult("agent loop", PASS, fqn)]


def check_verl_judge(cfg: Any) -> list[CheckResult]:
    """A judge served by verl needs rollout.name, its own resource pool and a model path."""
    rm = cfg.reward.reward_model
    if not rm.enable:
        return []
    problems = []
    try:
        name = rm.rollout.name
    except Exception:  # '???' (mandatory, missing)
        name = None
    if not name:
        problems.append("reward.reward_model.rollout.name is not set — set it to vllm")
    if not rm.enable_resource_pool:
        problems.append(
            "reward.reward_model.enable_resource_pool=false: the colocated judge drops data_source and crashes the "
            "custom reward — set enable_resource_pool=true with n_gpus_per_node/nnodes"
        )
    if not rm.model_path:
        problems.append("reward.reward_model.model_path is not set — set it to the judge model")
    if rm.enable_resource_pool and rm.rollout.get("free_cache_engine", True):
        problems.append(
            "reward.reward_model.rollout.free_cache_engine=true with enable_resource_pool=true: verl puts the judge to "
            "sleep at start-up and the reward workers never wake it (judge calls hang) — set "
            "reward.reward_model.rollout.free_cache_engine=false (its pool is its own: nothing to free)"
        )
    if problems:
        return [CheckResult("verl-served judge", FAIL, p) for p in problems]
    return [CheckResult("verl-served judge", PASS, f"{rm.model_path} on {rm.n_gpus_per_node} GPU(s)/node")]


def check_batch(cfg: Any) -> list[CheckResult]:
    """Mini-batch <= batch, batch x n divisible by training GPUs, TP fits (micro batches: check_micro_batches)."""
    actor = cfg.actor_rollout_ref.actor
    rollout = cfg.actor_rollout_ref.rollout
    batch, n = int(cfg.data.train_batch_size), int(rollout.n)
    gpus = int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes)
    out = []
    if int(actor.ppo_mini_batch_size) > batch:
        out.append(
            CheckResult(
                "batch",
                FAIL,
                f"actor.ppo_mini_batch_size={actor.ppo_mini_batch_size} > data.train_batch_size={batch} (both count "
                f"prompts) — set actor_rollout_ref.actor.ppo_mini_batch_size<={batch}",
            )
        )
    if (batch * n) % gpus:
        out.append(
            CheckResult(
                "batch",
                FAIL,
                f"data.train_batch_size x rollout.n = {batch} x {n} = {batch * n} responses do not divide over "
                f"{gpus} training GPUs — set data.train_batch_size to a multiple of {gpus // math.gcd(gpus, n)} "
                f"(or change rollout.n / trainer.n_gpus_per_node)",
            )
        )
    tp = int(rollout.tensor_model_parallel_size)
    if gpus % tp:
        out.append(
            CheckResult(
                "batch",
                FAIL,
                f"rollout.tensor_model_parallel_size={tp} does not divide {gpus} training GPUs — use a divisor "
                f"of {gpus}",
            )
        )
    if not out:
        out.append(
            CheckResult("batch", PASS, f"{batch} prompts x {n} = {batch * n} responses = {batch * n // gpus}/GPU")
        )
    return out


@dataclass(frozen=True)
class MicroBatchSplit:
    """One pass verl splits into micro batches on each GPU: how many samples reach a GPU and the micro batch."""

    key: str
    what: str
    per_gpu: int
    micro: int | None
    dynamic: bool


def micro_batch_splits(cfg: Any) -> list[MicroBatchSplit]:
    """The per-GPU batches of the actor update and the rollout / ref log-prob passes, as verl's workers get them.

    The trainer pads each step's responses to verl's own required multiple (PPOTrainer._get_required_batch_multiple:
    lcm of the data-parallel size and the actor's mini batch x n) before dispatching them evenly over the
    data-parallel ranks (GPUs / ulysses SP size); the actor splits its share into mini batches of
    mini x n / dp (engine_workers.train_mini_batch), and without use_dynamic_bsz prepare_micro_batches asserts that
    every per-GPU batch divides by its micro batch.
    """
    from types import SimpleNamespace

    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    aref = cfg.actor_rollout_ref
    actor, rollout, ref = aref.actor, aref.rollout, aref.ref
    n = int(rollout.n)
    gpus = int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes)
    responses = int(cfg.data.train_batch_size) * n
    splits: list[MicroBatchSplit] = []
    use_critic = need_critic(cfg)
    warmup = int(cfg.trainer.get("critic_warmup", 0) or 0)
    for steps in sorted({1, max(1, warmup)}):
        dp = gpus // int(actor.get("ulysses_sequence_parallel_size", 1) or 1)
        # verl's own padding rule, called on a stand-in for the trainer (it reads only these attributes).
        trainer = SimpleNamespace(config=cfg, use_critic=use_critic, global_steps=steps)
        multiple = PPOTrainer._get_required_batch_multiple(trainer, dp)  # type: ignore[arg-type]
        padded = -(-responses // multiple) * multiple
        splits.append(
            MicroBatchSplit(
                "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu",
                "old log-prob",
                padded // dp,
                rollout.get("log_prob_micro_batch_size_per_gpu"),
                bool(rollout.get("log_prob_use_dynamic_bsz", False)),
            )
        )
        if need_reference_policy(cfg):
            ref_dp = gpus // int(ref.get("ulysses_sequence_parallel_size", 1) or 1)
            splits.append(
                MicroBatchSplit(
                    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu",
                    "ref log-prob",
                    padded // ref_dp,
                    ref.get("log_prob_micro_batch_size_per_gpu"),
                    bool(ref.get("log_prob_use_dynamic_bsz", False)),
                )
            )
        if warmup < steps or warmup == 0:
            splits.append(
                MicroBatchSplit(
                    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
                    "actor update (per mini batch)",
                    int(actor.ppo_mini_batch_size) * n // dp,
                    actor.get("ppo_micro_batch_size_per_gpu"),
                    bool(actor.use_dynamic_bsz),
                )
            )
    unique: dict[tuple[str, int], MicroBatchSplit] = {(s.key, s.per_gpu): s for s in splits}
    return list(unique.values())


def check_micro_batches(cfg: Any) -> list[CheckResult]:
    """Every micro batch divides the per-GPU batch it splits (mirrors verl's worker assertions)."""
    actor, rollout = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    if bool(actor.use_dynamic_bsz) != bool(rollout.log_prob_use_dynamic_bsz):
        return [
            CheckResult(
                "micro batches",
                FAIL,
                f"actor.use_dynamic_bsz={actor.use_dynamic_bsz} but rollout.log_prob_use_dynamic_bsz="
                f"{rollout.log_prob_use_dynamic_bsz}: verl's actor worker asserts they are equal — set both",
            )
        ]
    out = []
    mini_rows = int(actor.ppo_mini_batch_size) * int(rollout.n)
    gpus = int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes)
    dp = gpus // int(actor.get("ulysses_sequence_parallel_size", 1) or 1)
    if not actor.use_dynamic_bsz and mini_rows % dp:
        out.append(
            CheckResult(
                "micro batches",
                FAIL,
                f"actor mini batch {actor.ppo_mini_batch_size} x n {rollout.n} = {mini_rows} responses do not split "
                f"over {dp} data-parallel GPUs — make actor_rollout_ref.actor.ppo_mini_batch_size x rollout.n a "
                f"multiple of {dp}",
            )
        )
        return out
    for split in micro_batch_splits(cfg):
        if split.dynamic:
            continue
        if not split.micro:
            out.append(CheckResult("micro batches", FAIL, f"{split.key} is not set and dynamic batch size is off"))
        elif split.per_gpu % int(split.micro):
            divisors = [d for d in range(1, split.per_gpu + 1) if split.per_gpu % d == 0]
            out.append(
                CheckResult(
                    "micro batches",
                    FAIL,
                    f"{split.what}: {split.per_gpu} responses per GPU do not split into micro-batches of "
                    f"{split.micro} (verl asserts this at the first step) — set {split.key} to a divisor of "
                    f"{split.per_gpu} ({', '.join(map(str, divisors))})",
                )
            )
    if not out:
        parts = [
            f"{s.what} {s.per_gpu}/GPU" + (" (dynamic)" if s.dynamic else f" in micro batches of {s.micro}")
            for s in micro_batch_splits(cfg)
        ]
        out.append(CheckResult("micro batches", PASS, "; ".join(parts)))
    return out


def check_template(cfg: Any) -> list[CheckResult]:
    """The custom chat template renders a one-message prompt ending inside <think> when responses start there."""
    template = cfg.actor_rollout_ref.model.get("custom_chat_template")
    if not template:
        return [CheckResult("chat template", WARN, "no custom_chat_template: the model's own template is used")]
    try:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        text = env.from_string(str(template)).render(
            messages=[{"role": "user", "content": "案情：……"}], add_generation_prompt=True
        )
    except Exception as exc:
        return [CheckResult("chat template", FAIL, f"custom_chat_template does not render: {one_line(exc)} — fix it")]
    kwargs = reward_kwargs(cfg)
    if "案情：……" not in text:
        return [CheckResult("chat template", FAIL, "custom_chat_template drops the user message — render content")]
    if bool(kwargs.get("response_starts_in_think", True)) and not text.rstrip().endswith("<think>"):
        return [
            CheckResult(
                "chat template",
                FAIL,
                "custom_chat_template does not end with '<think>' but reward_kwargs.response_starts_in_think=true — "
                "end the template with 'Assistant: <think>' or set response_starts_in_think=false",
            )
        ]
    return [CheckResult("chat template", PASS, f"ends with {text.rstrip()[-18:]!r}")]


def check_judge_section(
    cfg: Any, environ: Mapping[str, str], multi_node: bool, recipe: Recipe | None = None
) -> list[CheckResult]:
    """judge.mode, GPU/parallel sizes, and agreement with the reward's use of the judge (the recipe says)."""
    judge = JudgeSpec.from_config(cfg)
    kwargs = reward_kwargs(cfg)
    needs_judge = recipe is not None and recipe.uses_judge(kwargs)
    uses = no_judge_kwargs(recipe, kwargs) if recipe is not None else "no recipe"
    out = []
    if judge.mode not in JUDGE_MODES:
        return [CheckResult("judge", FAIL, f"judge.mode={judge.mode} — use one of {', '.join(JUDGE_MODES)}")]
    if needs_judge and judge.mode == "none":
        offline = ", ".join(
            f"reward.custom_reward_function.reward_kwargs.{k}={v}"
            for k, v in (recipe.offline_reward_kwargs or {}).items()  # type: ignore[union-attr]
            if v is not None
        )
        fix = offline or "reward kwargs that call no judge"
        out.append(
            CheckResult(
                "judge",
                FAIL,
                f"reward_kwargs {uses} needs a judge but judge.mode=none — set {fix} or judge.mode=external",
            )
        )
    if judge.mode == "verl_pool" and not cfg.reward.reward_model.enable:
        out.append(
            CheckResult(
                "judge",
                FAIL,
                "judge.mode=verl_pool but reward.reward_model.enable=false — set reward.reward_model.enable=true "
                "and its pool (configs/legal_grpo_verl_pool.yaml shows one)",
            )
        )
    if (
        judge.mode == "external"
        and judge.gpus
        and len(judge.gpus) != judge.tensor_parallel_size * judge.data_parallel_size
    ):
        out.append(
            CheckResult(
                "judge",
                FAIL,
                f"judge.gpus={','.join(judge.gpus)} is {len(judge.gpus)} GPU(s) but tensor x data parallel = "
                f"{judge.tensor_parallel_size} x {judge.data_parallel_size} — make them equal",
            )
        )
    if judge.mode == "external" and needs_judge:
        urls = judge_urls(cfg, environ)
        if not urls:
            out.append(
                CheckResult(
                    "judge",
                    FAIL,
                    "no judge endpoint — set JUDGE_BASE_URL or reward.custom_reward_function.reward_kwargs."
                    "judge_base_url",
                )
            )
        elif multi_node and any(("127.0.0.1" in u or "localhost" in u) for u in urls):
            out.append(
                CheckResult(
                    "judge",
                    FAIL,
                    f"judge endpoint {','.join(urls)} is loopback but reward workers run on every node — set "
                    "JUDGE_BASE_URL=http://<judge-host>:<port>/v1 (comma list for several servers)",
                )
            )
    if not out:
        out.append(CheckResult("judge", PASS, f"mode={judge.mode}, reward {uses}"))
    return out


# ------------------------------------------------------------------------------------------ machine checks


def count_gpus() -> int:
    """Visible GPUs: `nvidia-smi -L` (honouring CUDA_VISIBLE_DEVICES), else torch.cuda.device_count(), else 0."""
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            listing = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
            found = sum(1 for line in listing.splitlines() if line.startswith("GPU "))
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if visible is not None:
                found = min(found, len([g for g in visible.split(",") if g.strip()]))
            return found
        except (OSError, subprocess.SubprocessError):
            pass
    if not list(Path("/dev").glob("nvidia[0-9]*")) and "torch" not in sys.modules:
        return 0  # no NVIDIA device node: skip the torch import (seconds) on CPU boxes
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # no torch or a broken CUDA install: no usable GPU
        return 0


def check_gpus(cfg: Any, multi_node: bool, dry_run: bool, gpus: int) -> list[CheckResult]:
    """Training GPUs per node + the judge's GPUs on this node against what is visible."""
    judge = JudgeSpec.from_config(cfg)
    train = int(cfg.trainer.n_gpus_per_node)
    judge_here = 0 if multi_node else judge_gpu_count(cfg, judge)
    need = train + judge_here
    what = f"{train} training" + (f" + {judge_here} judge" if judge_here else "") + f" = {need} GPU(s) on this node"
    if gpus >= need:
        return [CheckResult("GPUs", PASS, f"{what}; {gpus} visible")]
    message = (
        f"{what} but {gpus} visible — run on a node with {need} GPUs, or lower trainer.n_gpus_per_node "
        f"(and data.train_batch_size to match)"
    )
    return [CheckResult("GPUs", WARN if dry_run else FAIL, message)]


def check_wandb(cfg: Any, environ: Mapping[str, str], dry_run: bool) -> list[CheckResult]:
    """A wandb key (or offline/disabled mode) when wandb logging is on."""
    loggers = cfg.trainer.logger
    loggers = [loggers] if isinstance(loggers, str) else list(loggers or [])
    if "wandb" not in loggers:
        return [CheckResult("wandb", PASS, "wandb logging off")]
    if environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return [CheckResult("wandb", PASS, f"WANDB_MODE={environ['WANDB_MODE']}")]
    netrc = Path(environ.get("NETRC", Path.home() / ".netrc"))
    if environ.get("WANDB_API_KEY") or (netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")):
        return [CheckResult("wandb", PASS, "credentials found")]
    message = (
        "trainer.logger has wandb but no WANDB_API_KEY (or `wandb login`) — export WANDB_API_KEY, or "
        "WANDB_MODE=offline, or trainer.logger=[console]"
    )
    return [CheckResult("wandb", WARN if dry_run else FAIL, message)]


# ------------------------------------------------------------------------------------------------------- run


def run_preflight(
    config: str = DEFAULT_CONFIG,
    overrides: Sequence[str] = (),
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
    gpus: int | None = None,
) -> list[CheckResult]:
    """All checks for one launch; stops after composition errors (nothing else can be checked)."""
    env = dict(os.environ if environ is None else environ)
    try:
        cfg = compose_config(config, overrides, trainers=GRPO_TRAINERS)
    except ConfigError as exc:
        hint = _near_miss(config, overrides) or "fix the config name or the override"
        return [CheckResult("compose", FAIL, f"{exc} — {hint}")]
    results = [CheckResult("compose", PASS, f"{config} + {len(overrides)} override(s)")]
    results += check_legacy_reward_keys(cfg)
    results += _check_added(config, cfg, overrides)
    resolved = check_resolves(cfg)
    results += resolved
    if resolved[0].status == FAIL:
        return results
    multi = is_multi_node(cfg, env)
    n_gpus = count_gpus() if gpus is None else gpus
    samples: dict[str, dict[str, Any]] = {}
    recipe_results, recipe = check_recipe(cfg)
    results += recipe_results

    def data_check(c: Any) -> list[CheckResult]:
        found, rows = check_data(c, recipe)
        samples.update(rows)
        return found

    # Stage 1: checks that need no verl import (seconds).
    stage1: list[tuple[str, Callable[[Any], list[CheckResult]]]] = [
        ("batch", check_batch),
        ("chat template", check_template),
        ("judge", lambda c: check_judge_section(c, env, multi, recipe)),
        ("data", data_check),
        ("GPUs", lambda c: check_gpus(c, multi, dry_run, n_gpus)),
        ("wandb", lambda c: check_wandb(c, env, dry_run)),
    ]
    for name, check in stage1:
        results += _guarded(name, check, cfg)
    if any(r.status == FAIL for r in results):
        results.append(CheckResult("verl checks", WARN, "skipped until the failures above are fixed"))
        return results
    # Stage 2: verl's own validation and registries, then the reward function (imports verl + torch: ~10 s).
    stage2: list[tuple[str, Callable[[Any], list[CheckResult]]]] = [
        ("verl validate_config", check_verl_validate),
        ("micro batches", check_micro_batches),
        ("algorithm", check_algorithm),
        ("reward manager", check_reward_manager),
        ("agent loop", check_agent_loop),
        ("verl-served judge", check_verl_judge),
    ]
    if recipe is not None:
        stage2.append(("reward function", lambda c: check_reward(c, recipe, samples, env)))
    for name, check in stage2:
        results += _guarded(name, check, cfg)
    return results


def _near_miss(config: str, overrides: Sequence[str]) -> str:
    """did_you_mean against the config as it is (no overrides); '' when even that does not compose."""
    try:
        return did_you_mean(compose_config(config, trainers=GRPO_TRAINERS), overrides)
    except ConfigError:
        return ""


def _check_added(config: str, cfg: Any, overrides: Sequence[str]) -> list[CheckResult]:
    """check_added_keys against the config composed without the + / ++ overrides (cfg itself when there are none)."""
    added = {text for text, _ in added_overrides(overrides)}
    if not added:
        return check_added_keys(cfg, ())
    try:
        base = compose_config(config, [o for o in overrides if o not in added])
    except ConfigError:  # a plain override that needs an added key: nothing to compare against
        return [CheckResult("added keys", WARN, f"not checked: {config} does not compose without {sorted(added)}")]
    return check_added_keys(base, overrides)


def _guarded(name: str, check: Callable[[Any], list[CheckResult]], cfg: Any) -> list[CheckResult]:
    """Run one check; a crash (e.g. a mistyped value) becomes one FAIL line instead of a traceback."""
    try:
        return check(cfg)
    except Exception as exc:
        return [CheckResult(name, FAIL, f"{type(exc).__name__}: {one_line(exc)} — fix the value it names")]


def format_table(results: Sequence[CheckResult]) -> str:
    """The summary table, then the failures again as one line each."""
    width = max(len(r.name) for r in results)
    rows = [f"{'check'.ljust(width)}  status  detail", f"{'-' * width}  ------  ------"]
    rows += [f"{r.name.ljust(width)}  {r.status:<6}  {' '.join(r.message.split())}" for r in results]
    failures = [r for r in results if r.status == FAIL]
    warnings = [r for r in results if r.status == WARN]
    rows.append("")
    rows.append(f"preflight: {len(failures)} failure(s), {len(warnings)} warning(s), {len(results)} check(s)")
    rows += [r.line() for r in failures]
    return "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: print the table, exit 1 on any failure."""
    parser = argparse.ArgumentParser(prog="python -m recipes.preflight", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config name in configs/ (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="CPU box: missing GPUs / wandb key only warn")
    parser.add_argument(
        "--as-trainer",
        action="store_true",
        help="add the overrides the launch script adds (run name, $JUDGE_BASE_URL) before checking",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also show verl's known start-up warnings")
    parser.add_argument("overrides", nargs="*", help="hydra overrides, as for the trainer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("PREFLIGHT_LOG_LEVEL", "WARNING"))
    if not args.verbose:
        hide_known_verl_noise()
    overrides = list(args.overrides)
    if args.as_trainer:
        try:
            overrides = trainer_overrides(compose_config(args.config, overrides), overrides, os.environ)
        except ConfigError as exc:
            sys.stdout.write(f"FAIL compose: {exc}\n")
            return 1
    results = run_preflight(args.config, overrides, dry_run=args.dry_run)
    sys.stdout.write(format_table(results))
    return 1 if any(r.status == FAIL for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
