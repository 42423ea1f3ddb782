"""The one place that builds the recipe's launch commands (trainer, `vllm serve`, `ray job submit`) as arg lists.

scripts/train_grpo.sh and scripts/serve_judge.sh run exactly what this module prints, so tests check the commands
the scripts run:

    python -m recipes.commands trainer  --config legal_grpo [overrides...]   # the trainer command
    python -m recipes.commands vllm     --config legal_grpo [overrides...]   # the judge server command
    python -m recipes.commands ray-submit --config legal_grpo [overrides...] # runtime env file && the submission
    python -m recipes.commands plan     --config legal_grpo [overrides...]   # bash variables for the scripts
    python -m recipes.commands runtime-env --config legal_grpo --output F    # write the Ray runtime env (mode 600)
    python -m recipes.commands health   URL [URL...]                          # exit 0 when all answer

Environment read here (and nowhere else): RUN_NAME, RUN_TAG (run naming), JUDGE_BASE_URL (judge endpoints, comma
list), JUDGE_MODEL / JUDGE_HOST / JUDGE_PORT / JUDGE_GPUS / JUDGE_STARTUP_TIMEOUT_S (judge section), NNODES /
RAY_ADDRESS (multi-node), RAY_AUTH_MODE (default token for `ray job submit`), PYTHON (trainer interpreter), VLLM
(replaces the first word of judge.server_command, the vllm executable).

Multi-node secrets: the job's runtime env (which Ray's job API shows to whoever may read the job list) forwards only
the non-secret variables of FORWARD_ENV. The secrets (NODE_SECRETS: JUDGE_API_KEY, WANDB_API_KEY, HF_TOKEN) reach the
workers the way Ray supports without a runtime env: Ray's worker processes inherit the environment of the `ray start`
that started their node, so each node's `ray start` runs with them set (README "Multi-node"). The submission itself
authenticates with Ray's token (RAY_AUTH_MODE=token; the token from RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).

External judges: with JUDGE_BASE_URL set (judge.mode=external, one node) the launch starts no judge of its own. When
no URL is loopback (the judges run elsewhere) the judge GPU(s) of the config are handed to the trainer:
``judge.gpus=''`` and ``trainer.n_gpus_per_node=<training + judge GPUs>`` (7 + 1 = 8 by default) are added to the
overrides (a ``trainer.n_gpus_per_node`` given on the command line wins). A loopback URL means the judge runs on
this node, on judge.gpus: those stay reserved. Composition is fast: verl's config directory is found without
importing verl.
"""

from __future__ import annotations

import data.setup_hint  # noqa: F401  (first: a missing package is one line, not a traceback)  # isort: skip
import argparse
import datetime as _dt
import importlib.util
import ipaddress
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"
DEFAULT_CONFIG = "legal_grpo"
RUNTIME_ENV_TEMPLATE = CONFIG_DIR / "runtime_env.yaml"
TRAINER_MODULE = "recipes.main_ppo"
EXPERIMENT_KEY = "trainer.experiment_name"
JUDGE_URL_KEY = "reward.custom_reward_function.reward_kwargs.judge_base_url"
DEFAULT_RAY_ADDRESS = "http://127.0.0.1:8265"
# `ray job submit` authenticates with Ray's token unless RAY_AUTH_MODE says otherwise (Ray >= 2.52).
RAY_AUTH_MODE_ENV = "RAY_AUTH_MODE"
DEFAULT_RAY_AUTH_MODE = "token"
# Forwarded from the submitting shell into the Ray runtime env (multi-node); names only ever printed, not values.
# No secret: Ray's job API returns every job's runtime env.
FORWARD_ENV: tuple[str, ...] = (
    "JUDGE_BASE_URL",
    "JUDGE_MODEL",
    "LEGAL_SHARED_DIR",
    "WANDB_MODE",
    "WANDB_PROJECT",
    "WANDB_ENTITY",
    "WANDB_BASE_URL",
    "HF_HOME",
    "HF_ENDPOINT",
    "VERL_LOGGING_LEVEL",
)
# Secrets the workers need, never put in the runtime env: set them in the environment of `ray start` on every node.
NODE_SECRETS: tuple[str, ...] = ("JUDGE_API_KEY", "WANDB_API_KEY", "HF_TOKEN")
# Env var -> judge-section override.
JUDGE_ENV_OVERRIDES: tuple[tuple[str, str], ...] = (
    ("JUDGE_MODEL", "judge.model"),
    ("JUDGE_HOST", "judge.host"),
    ("JUDGE_PORT", "judge.port"),
    ("JUDGE_GPUS", "judge.gpus"),
    ("JUDGE_STARTUP_TIMEOUT_S", "judge.startup_timeout_s"),
)
GPUS_KEY = "trainer.n_gpus_per_node"
# In judge.server_command, stands for judge.model (a command without it gets the model as its next argument).
MODEL_PLACEHOLDER = "{model}"
LOOPBACK_HOSTS = ("127.", "localhost", "[::1]", "0.0.0.0")


# verl trainer config a launch config extends -> the script that launches it (`--config NAME` lists only its own).
TRAINER_SCRIPTS: dict[str, str] = {"ppo_trainer": "scripts/train_grpo.sh", "sft_trainer_engine": "scripts/train_sft.sh"}
LAUNCH_TRAINERS: tuple[str, ...] = tuple(TRAINER_SCRIPTS)
GRPO_TRAINERS: tuple[str, ...] = ("ppo_trainer",)


class ConfigError(ValueError):
    """The named config cannot be found or composed."""


# ------------------------------------------------------------------------------------------------ composition


# Warnings verl prints on every CPU import, none of them about this launch (see them with -v).
KNOWN_VERL_WARNINGS = (
    r".* engine is not available: ModuleNotFoundError",  # optional training engines (torchtitan, megatron, ...)
    r"Disabled critic as algorithm\.adv_estimator != gae",  # GRPO has no critic, by design
)
KNOWN_VERL_LOG_LINES = {
    "verl.plugin.platform.platform_manager": ("No supported accelerator detected", "is registered but not available"),
}


class _DropLines(logging.Filter):
    """Drops log records whose message starts with or contains one of the given texts."""

    def __init__(self, texts: Sequence[str]) -> None:
        super().__init__()
        self.texts = tuple(texts)

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not any(text in message for text in self.texts)


def hide_known_verl_noise() -> None:
    """Silence verl's known CPU start-up warnings in our tools (a filter survives verl re-setting log levels)."""
    import warnings

    for pattern in KNOWN_VERL_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=UserWarning)
    for name, texts in KNOWN_VERL_LOG_LINES.items():
        logging.getLogger(name).addFilter(_DropLines(texts))


_BROKEN = "<not YAML>"


def _trainer_of(path: Path) -> str | None:
    """The verl trainer config (a LAUNCH_TRAINERS name) in a config file's defaults; None when it names none."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return _BROKEN
    defaults = data.get("defaults") if isinstance(data, dict) else None
    if not isinstance(defaults, list):
        return None
    return next((name for name in LAUNCH_TRAINERS if name in defaults), None)


def launchable_configs(config_dir: Path = CONFIG_DIR, trainers: Sequence[str] = GRPO_TRAINERS) -> list[str]:
    """Names of the trainer configs in configs/ (top level, with one of trainers in their defaults), sorted."""
    names = []
    for path in sorted(config_dir.glob("*.yaml")):
        trainer = _trainer_of(path)
        # a broken trainer config must fail its tests, not vanish from them
        if trainer == _BROKEN or (trainer is not None and trainer in trainers):
            names.append(path.stem)
    return names


def config_name_of(name: str, trainers: Sequence[str] | None = GRPO_TRAINERS) -> str:
    """Normalize 'legal_grpo', 'legal_grpo.yaml' or 'configs/legal_grpo.yaml' to the config name.

    trainers: the verl trainer configs the calling launch runs (GRPO by default); a config over another trainer is
    refused with the script that launches it. None: any existing config (composition only).
    """
    stem = Path(name).name
    stem = stem[: -len(".yaml")] if stem.endswith(".yaml") else stem
    path = CONFIG_DIR / f"{stem}.yaml"
    listed = LAUNCH_TRAINERS if trainers is None else tuple(trainers)
    if not path.is_file():
        known = ", ".join(launchable_configs(trainers=listed))
        raise ConfigError(f"config {name!r} not found in {CONFIG_DIR} — use one of: {known}")
    trainer = _trainer_of(path)
    if trainers is not None and trainer in TRAINER_SCRIPTS and trainer not in trainers:
        raise ConfigError(
            f"config {stem!r} extends verl's {trainer}: launch it with `bash {TRAINER_SCRIPTS[trainer]} --config "
            f"{stem}` (this command takes: {', '.join(launchable_configs(trainers=listed))})"
        )
    return stem


def verl_config_dir() -> Path:
    """verl's trainer config directory, located without importing verl (importing it takes ~10 s)."""
    spec = importlib.util.find_spec("verl")
    if spec is None or spec.origin is None:
        raise ConfigError("verl is not installed in this Python — run `bash scripts/test.sh` (CPU) or install .[train]")
    return Path(spec.origin).parent / "trainer" / "config"


def compose_config(name: str, overrides: Sequence[str] = (), trainers: Sequence[str] | None = None) -> Any:
    """Compose configs/<name>.yaml with hydra overrides, exactly as the trainer's Hydra main would.

    trainers: as for config_name_of (None: any config; the GRPO tools pass GRPO_TRAINERS).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    stem = config_name_of(name, trainers=trainers)
    # Same search path as the YAML's pkg://verl.trainer.config, as a file path: no verl import.
    fast = [f"hydra.searchpath=[file://{verl_config_dir()}]"]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            return compose(config_name=stem, overrides=[*fast, *overrides])
    except Exception as exc:  # hydra raises several types; all mean "this config + overrides do not compose"
        raise ConfigError(f"config {stem} does not compose with {list(overrides)}: {exc}".replace("\n", " ")) from exc


def override_keys(overrides: Sequence[str]) -> set[str]:
    """Keys named by hydra overrides ('+a.b=1', '++a.b=1', '~a.b' -> 'a.b')."""
    keys = set()
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        keys.add(key)
    return keys


# ---------------------------------------------------------------------------------------------- judge section


@dataclass(frozen=True)
class JudgeSpec:
    """The `judge:` section of a composed config."""

    mode: str
    model: str
    gpus: tuple[str, ...]
    host: str
    port: int
    tensor_parallel_size: int
    data_parallel_size: int
    max_model_len: int
    gpu_memory_utilization: float
    api_key_env: str
    log_file: str
    startup_timeout_s: int
    server_command: tuple[str, ...] = ("vllm", "serve")
    server_args: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: Any) -> JudgeSpec:
        """Read cfg.judge (every key has a default, so partial sections work)."""
        section = dict(cfg.get("judge") or {})
        gpus = str(section.get("gpus", "") or "")
        port = int(section.get("port", 8000))
        return cls(
            mode=str(section.get("mode", "external")),
            model=str(section.get("model", "Qwen/Qwen2.5-7B-Instruct")),
            gpus=tuple(g.strip() for g in gpus.split(",") if g.strip()),
            host=str(section.get("host", "127.0.0.1")),
            port=port,
            tensor_parallel_size=int(section.get("tensor_parallel_size", 1)),
            data_parallel_size=int(section.get("data_parallel_size", 1)),
            max_model_len=int(section.get("max_model_len", 8192)),
            gpu_memory_utilization=float(section.get("gpu_memory_utilization", 0.9)),
            api_key_env=str(section.get("api_key_env", "JUDGE_API_KEY") or ""),
            log_file=str(section.get("log_file", f"logs/judge-{port}.log")),
            startup_timeout_s=int(section.get("startup_timeout_s", 900)),
            server_command=_words(section.get("server_command", "vllm serve"), "judge.server_command"),
            server_args=_words(section.get("server_args", ()), "judge.server_args", allow_empty=True),
        )

    @property
    def client_host(self) -> str:
        """Where a client on this node reaches the server (a wildcard bind is reached on loopback)."""
        return "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host

    @property
    def base_url(self) -> str:
        """OpenAI base URL of the server this section describes."""
        return f"http://{self.client_host}:{self.port}/v1"

    @property
    def binds_loopback(self) -> bool:
        """True when the server listens on this machine only (127.x, ::1, localhost): no other machine reaches it."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:  # a host name, or "" (every interface)
            return False

    def address(self, hostname: str | None = None) -> str:
        """Where the server can be reached, as a person needs it: its URL; for a wildcard bind also the URL other
        machines use (this machine's name) and the bind address itself."""
        if self.host not in ("", "0.0.0.0", "::"):
            return self.base_url
        name = hostname or socket.gethostname()
        return (
            f"http://{name}:{self.port}/v1 (listening on every interface, {self.host or '0.0.0.0'}:{self.port}; "
            f"{self.base_url} on this machine)"
        )


def health_url(base_url: str) -> str:
    """vLLM's /health URL for an OpenAI base URL (http://h:p/v1 -> http://h:p/health)."""
    root = base_url.rstrip("/")
    root = root[: -len("/v1")] if root.endswith("/v1") else root
    return f"{root}/health"


def split_urls(value: Any) -> list[str]:
    """A comma list (or list) of URLs as a list."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(u).strip() for u in items if str(u).strip()]


def judge_urls(cfg: Any, environ: Mapping[str, str]) -> list[str]:
    """Judge endpoints the reward will use: $JUDGE_BASE_URL, else reward_kwargs.judge_base_url (resolved)."""
    if environ.get("JUDGE_BASE_URL"):
        return split_urls(environ["JUDGE_BASE_URL"])
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, JUDGE_URL_KEY, default=None)
    return split_urls(value)


def uses_env_judges(cfg: Any, environ: Mapping[str, str]) -> bool:
    """JUDGE_BASE_URL names the judge(s) (judge.mode=external): the launch starts no judge server of its own."""
    judge_mode = str((cfg.get("judge") or {}).get("mode", "external"))
    return bool(split_urls(environ.get("JUDGE_BASE_URL"))) and judge_mode == "external"


def is_loopback_url(url: str) -> bool:
    """True for a URL on this machine (127.x, localhost, ::1, 0.0.0.0)."""
    from urllib.parse import urlsplit

    host = urlsplit(url if "//" in url else f"http://{url}").netloc.rsplit("@", 1)[-1]
    return host.startswith(LOOPBACK_HOSTS)


def judges_elsewhere(cfg: Any, environ: Mapping[str, str]) -> bool:
    """One-node run whose judges ($JUDGE_BASE_URL) all run on other machines: no GPU of this node is the judge's."""
    if not uses_env_judges(cfg, environ) or is_multi_node(cfg, environ):
        return False
    return not any(is_loopback_url(u) for u in split_urls(environ["JUDGE_BASE_URL"]))


def judge_env_overrides(environ: Mapping[str, str], user_overrides: Sequence[str]) -> list[str]:
    """judge.* overrides from JUDGE_MODEL/HOST/PORT/GPUS (a command-line override of the same key wins)."""
    given = override_keys(user_overrides)
    out = []
    for env, key in JUDGE_ENV_OVERRIDES:
        if env in environ and key not in given:
            out.append(f"{key}={hydra_quote(environ[env])}")
    return out


def hydra_quote(value: str) -> str:
    """A value quoted for a hydra override (keeps commas, colons and slashes literal)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------------------------------- commands


def run_name(base: str, environ: Mapping[str, str], today: _dt.date | None = None) -> str:
    """<recipe>-<model>-<MMDD><tag>: $RUN_NAME verbatim, else base + '-MMDD' + $RUN_TAG."""
    if environ.get("RUN_NAME"):
        return environ["RUN_NAME"]
    day = (today or _dt.date.today()).strftime("%m%d")
    return f"{base}-{day}{environ.get('RUN_TAG', '')}"


def trainer_overrides(
    cfg: Any, user_overrides: Sequence[str], environ: Mapping[str, str], today: _dt.date | None = None
) -> list[str]:
    """The overrides the trainer gets: judge env overrides, the user's, the run name, the judge URLs from env."""
    given = override_keys(user_overrides)
    out = [*judge_env_overrides(environ, user_overrides), *user_overrides]
    if EXPERIMENT_KEY not in given:
        out.append(f"{EXPERIMENT_KEY}={run_name(str(cfg.trainer.experiment_name), environ, today)}")
    if uses_env_judges(cfg, environ) and JUDGE_URL_KEY not in given:
        out.append(f"{JUDGE_URL_KEY}={hydra_quote(','.join(split_urls(environ['JUDGE_BASE_URL'])))}")
    if judges_elsewhere(cfg, environ):
        # The judges run elsewhere: the config's judge GPU(s) train too (the preflight checks batch divisibility).
        freed = len(JudgeSpec.from_config(cfg).gpus)
        if freed:
            out.append("judge.gpus=''")
            if GPUS_KEY not in given:
                out.append(f"{GPUS_KEY}={int(cfg.trainer.n_gpus_per_node) + freed}")
    return out


def trainer_command(
    config_name: str, overrides: Sequence[str], python: str = "python3", config_path: bool = True
) -> list[str]:
    """`python3 -m recipes.main_ppo --config-path=<abs configs> --config-name=NAME overrides...`.

    config_path=False drops --config-path (for `ray job submit`: the job runs in Ray's copy of the repo, where
    recipes.trainer.main_ppo finds configs/ next to itself; the submitter's absolute path may not exist there).
    """
    path = [f"--config-path={CONFIG_DIR}"] if config_path else []
    return [python, "-m", TRAINER_MODULE, *path, f"--config-name={config_name_of(config_name)}", *overrides]


def _words(value: Any, key: str, allow_empty: bool = False) -> tuple[str, ...]:
    """A command or argument list from YAML: a list of strings, or one string split like a shell would."""
    words = shlex.split(value) if isinstance(value, str) else [str(v) for v in (value or ())]
    if not words and not allow_empty:
        raise ConfigError(f"{key} is empty: give the judge server command, e.g. 'vllm serve'")
    return tuple(words)


def vllm_serve_command(judge: JudgeSpec, vllm: str | None = None) -> list[str]:
    """judge.server_command (`vllm serve`) for the judge; the API key goes through $VLLM_API_KEY, never argv.

    ``vllm`` (env VLLM) replaces the command's first word, the executable.
    """
    command = list(judge.server_command)
    if vllm:
        command[0] = vllm
    if any(MODEL_PLACEHOLDER in word for word in command):
        command = [word.replace(MODEL_PLACEHOLDER, judge.model) for word in command]
    else:  # `vllm serve MODEL`: the model is the first positional argument
        command.append(judge.model)
    return [
        *command,
        "--served-model-name",
        judge.model,
        "--host",
        judge.host,
        "--port",
        str(judge.port),
        "--tensor-parallel-size",
        str(judge.tensor_parallel_size),
        "--data-parallel-size",
        str(judge.data_parallel_size),
        "--max-model-len",
        str(judge.max_model_len),
        "--gpu-memory-utilization",
        str(judge.gpu_memory_utilization),
        *judge.server_args,
    ]


def ray_job_submit_command(
    address: str, runtime_env_path: str, trainer_cmd: Sequence[str], submission_id: str | None = None
) -> list[str]:
    """`ray job submit --address=... --runtime-env=... --working-dir . [--submission-id=...] -- <trainer>`."""
    cmd = ["ray", "job", "submit", f"--address={address}", f"--runtime-env={runtime_env_path}", "--working-dir", "."]
    if submission_id:
        cmd.append(f"--submission-id={submission_id}")
    return [*cmd, "--", *trainer_cmd]


def runtime_env_command(config_name: str, output: str, python: str = "python3") -> list[str]:
    """`python3 -m recipes.commands runtime-env --config NAME --output PATH`: writes the file `ray job submit` reads."""
    return [python, "-m", "recipes.commands", "runtime-env", "--config", config_name, "--output", output]


def write_private(path: Path, text: str) -> None:
    """Write text to path with mode 600 whatever was there before, atomically (a temp file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mkstemp: mode 600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_runtime_env(template: Path, environ: Mapping[str, str], forward: Sequence[str] = FORWARD_ENV) -> dict:
    """configs/runtime_env.yaml plus the forwarded variables that are set in environ (never NODE_SECRETS)."""
    import yaml

    data = yaml.safe_load(template.read_text(encoding="utf-8")) or {}
    env_vars = {str(k): str(v) for k, v in (data.get("env_vars") or {}).items()}
    env_vars.update({name: environ[name] for name in forward if environ.get(name) and name not in NODE_SECRETS})
    data["env_vars"] = env_vars
    data.pop("working_dir", None)  # --working-dir . sets it
    return data


def is_multi_node(cfg: Any, environ: Mapping[str, str]) -> bool:
    """NNODES>1, RAY_ADDRESS set, or a config with trainer.nnodes>1."""
    try:
        nnodes = int(environ.get("NNODES", "1") or 1)
    except ValueError:
        nnodes = 1
    return nnodes > 1 or bool(environ.get("RAY_ADDRESS")) or int(cfg.trainer.nnodes) > 1


def visible_gpu_count() -> int:
    """GPUs `nvidia-smi -L` lists (0 without nvidia-smi), as the launch script counts them."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return 0
    try:
        listing = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def trainer_devices(plan: Plan, environ: Mapping[str, str], gpu_count: int) -> tuple[str, str]:
    """CUDA_VISIBLE_DEVICES for the trainer ("" = leave it as it is) and a note when no GPU is visible here.

    With a judge of ours on judge.gpus (single node, external mode, no JUDGE_BASE_URL elsewhere): the visible GPUs
    ($CUDA_VISIBLE_DEVICES, else 0..N-1) minus the judge's, the first trainer.n_gpus_per_node of them. On a machine
    without GPUs (a dry run) the node the config describes is assumed.
    """
    judge = plan.judge
    if plan.multi_node or judge.mode != "external" or not judge.gpus:
        return "", ""
    note = ""
    visible = [g.strip() for g in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    if not visible:
        count = gpu_count
        if count == 0:
            count = plan.train_gpus_per_node + plan.judge_gpus_here
            note = f"no GPU visible here: the GPU ids above assume a node with {count} GPUs numbered 0..{count - 1}"
        visible = [str(i) for i in range(count)]
    return ",".join(trainer_gpus(judge, plan.train_gpus_per_node, visible)), note


def trainer_gpus(judge: JudgeSpec, n_train: int, visible: Sequence[str]) -> list[str]:
    """GPU ids for the trainer on a node: the visible ones minus the judge's, the first n_train of them."""
    return [g for g in visible if g not in judge.gpus][:n_train]


def judge_gpu_count(cfg: Any, judge: JudgeSpec) -> int:
    """GPUs the judge takes on this node: its `vllm serve` GPUs (external) or verl's reward pool (verl_pool)."""
    if judge.mode == "external":
        return len(judge.gpus)
    if judge.mode == "verl_pool":
        rm = cfg.reward.reward_model
        if rm.enable and rm.enable_resource_pool:
            return int(rm.n_gpus_per_node)
    return 0


def data_files(cfg: Any) -> list[str]:
    """Resolved data.train_files + data.val_files (each may be a list); unresolvable ones are skipped."""
    from omegaconf import ListConfig

    out: list[str] = []
    for key in ("train_files", "val_files"):
        try:
            value = cfg.data[key]
        except Exception:  # an ${oc.env:...} without its variable: the preflight reports it
            continue
        items = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
        out.extend(str(v) for v in items)
    return out


def recipe_sample(cfg: Any) -> tuple[str, str] | None:
    """(data.prepare source, input file) of the config's shipped fictional sample (``recipe.sample_*``), if any."""
    from omegaconf import OmegaConf

    source = OmegaConf.select(cfg, "recipe.sample_source", default=None)
    path = OmegaConf.select(cfg, "recipe.sample_input", default=None)
    return (str(source), str(path)) if source and path else None


def sample_prep_argv(cfg: Any, output: str | Path) -> list[str] | None:
    """`data.prepare` arguments preparing the config's shipped sample into output; None when it has none."""
    sample = recipe_sample(cfg)
    if sample is None:
        return None
    return ["--source", sample[0], "--input", sample[1], "--output", str(output)]


def sample_prep_command(cfg: Any, python: str = "python3") -> list[str] | None:
    """Command preparing the shipped sample into the configured data dir; None when it cannot stand in for it."""
    files = data_files(cfg)
    if len(files) != 2:
        return None
    train, val = (Path(os.path.expanduser(f)) for f in files)
    if train.parent != val.parent or (train.name, val.name) != ("train.parquet", "test.parquet"):
        return None
    argv = sample_prep_argv(cfg, train.parent)
    return None if argv is None else [python, "-m", "data.prepare", *argv]


# --------------------------------------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """Everything the launch scripts need, computed from one composition."""

    config_name: str
    overrides: list[str]
    judge: JudgeSpec
    judge_urls: list[str]
    env_judges: bool
    multi_node: bool
    trainer_cmd: list[str]
    vllm_cmd: list[str]
    submit_cmd: list[str]
    runtime_env_path: str
    run_name: str
    train_gpus_per_node: int
    judge_gpus_here: int
    data_files: list[str]
    data_missing: bool
    prep_cmd: list[str] | None
    sample_input: str = ""  # the shipped sample prep_cmd prepares (recipe.sample_input)
    data_readme: str = ""  # README section on the recipe's real data (Recipe.data_readme)
    ray_auth_mode: str = DEFAULT_RAY_AUTH_MODE  # RAY_AUTH_MODE for `ray job submit`
    runtime_env_cmd: list[str] = field(default_factory=list)  # writes runtime_env_path (before submit_cmd)


def build_plan(
    config: str, user_overrides: Sequence[str], environ: Mapping[str, str], today: _dt.date | None = None
) -> Plan:
    """Compose once and build every command for this launch."""
    name = config_name_of(config)
    base_overrides = [*judge_env_overrides(environ, user_overrides), *user_overrides]
    cfg = compose_config(name, base_overrides)
    overrides = trainer_overrides(cfg, user_overrides, environ, today)
    # The added overrides only set the run name and the judge URLs: apply them here instead of composing again.
    from omegaconf import OmegaConf, open_dict

    with open_dict(cfg):
        for item in overrides[len(base_overrides) :]:
            key, value = item.split("=", 1)
            parsed: Any = int(value) if key == GPUS_KEY else value[1:-1] if value.startswith("'") else value
            OmegaConf.update(cfg, key, parsed, merge=False)
    judge = JudgeSpec.from_config(cfg)
    multi = is_multi_node(cfg, environ)
    python = environ.get("PYTHON", "python3")
    trainer_cmd = trainer_command(name, overrides, python=python)
    run = str(cfg.trainer.experiment_name)
    runtime_env_path = f"outputs/runtime_env.{run}.yaml"
    address = environ.get("RAY_ADDRESS") or DEFAULT_RAY_ADDRESS
    files = data_files(cfg)
    missing = any(not Path(os.path.expanduser(f)).exists() for f in files)
    sample = recipe_sample(cfg)
    return Plan(
        config_name=name,
        overrides=overrides,
        judge=judge,
        judge_urls=judge_urls(cfg, environ) if judge.mode == "external" else [],
        env_judges=uses_env_judges(cfg, environ),
        multi_node=multi,
        trainer_cmd=trainer_cmd,
        vllm_cmd=vllm_serve_command(judge, vllm=environ.get("VLLM") or None),
        submit_cmd=ray_job_submit_command(
            address, runtime_env_path, trainer_command(name, overrides, python="python3", config_path=False)
        ),
        runtime_env_path=runtime_env_path,
        run_name=run,
        train_gpus_per_node=int(cfg.trainer.n_gpus_per_node),
        judge_gpus_here=0 if multi else judge_gpu_count(cfg, judge),
        data_files=files,
        data_missing=missing,
        prep_cmd=sample_prep_command(cfg, python=python) if missing else None,
        sample_input=sample[1] if sample else "",
        data_readme=_data_readme(cfg),
        ray_auth_mode=environ.get(RAY_AUTH_MODE_ENV) or DEFAULT_RAY_AUTH_MODE,
        runtime_env_cmd=runtime_env_command(name, runtime_env_path),
    )


def _data_readme(cfg: Any) -> str:
    """The README section on the config's recipe's real data ("" when the config names no known recipe)."""
    from recipes.recipe import RecipeError, recipe_of_config

    try:
        return recipe_of_config(cfg).data_readme
    except RecipeError:  # the preflight reports it, with the fix
        return ""


def plan_to_bash(plan: Plan, environ: Mapping[str, str] | None = None, gpu_count: int | None = None) -> str:
    """Bash assignments (for `eval`) describing the plan; every value shell-quoted."""
    env = os.environ if environ is None else environ
    devices, gpu_note = trainer_devices(plan, env, visible_gpu_count() if gpu_count is None else gpu_count)

    def scalar(name: str, value: Any) -> str:
        return f"{name}={shlex.quote(str(value))}"

    def array(name: str, values: Sequence[str] | None) -> str:
        return f"{name}=({' '.join(shlex.quote(v) for v in (values or []))})"

    judge = plan.judge
    lines = [
        scalar("PLAN_CONFIG", plan.config_name),
        array("PLAN_OVERRIDES", plan.overrides),
        scalar("PLAN_RUN_NAME", plan.run_name),
        scalar("PLAN_MULTI_NODE", int(plan.multi_node)),
        scalar("PLAN_JUDGE_MODE", judge.mode),
        scalar("PLAN_JUDGE_MODEL", judge.model),
        scalar("PLAN_JUDGE_GPUS", ",".join(judge.gpus)),
        scalar("PLAN_JUDGE_HOST", judge.host),
        scalar("PLAN_JUDGE_PORT", judge.port),
        scalar("PLAN_JUDGE_BASE_URL", judge.base_url),
        scalar("PLAN_JUDGE_ADDRESS", judge.address()),
        scalar("PLAN_JUDGE_LOOPBACK", int(judge.binds_loopback)),
        scalar("PLAN_JUDGE_HEALTH_URL", health_url(judge.base_url)),
        scalar("PLAN_JUDGE_LOG", judge.log_file),
        scalar("PLAN_JUDGE_TIMEOUT_S", judge.startup_timeout_s),
        scalar("PLAN_JUDGE_API_KEY_ENV", judge.api_key_env),
        array("PLAN_JUDGE_URLS", plan.judge_urls),
        array("PLAN_JUDGE_HEALTH_URLS", [health_url(u) for u in plan.judge_urls]),
        scalar("PLAN_JUDGE_FROM_ENV", int(plan.env_judges)),
        scalar("PLAN_TRAIN_GPUS_PER_NODE", plan.train_gpus_per_node),
        scalar("PLAN_JUDGE_GPUS_HERE", plan.judge_gpus_here),
        array("PLAN_DATA_FILES", plan.data_files),
        scalar("PLAN_DATA_MISSING", int(plan.data_missing)),
        array("PLAN_PREP_CMD", plan.prep_cmd),
        scalar("PLAN_SAMPLE_INPUT", plan.sample_input),
        scalar("PLAN_DATA_README", plan.data_readme),
        array("PLAN_TRAINER_CMD", plan.trainer_cmd),
        array("PLAN_VLLM_CMD", plan.vllm_cmd),
        array("PLAN_SUBMIT_CMD", plan.submit_cmd),
        scalar("PLAN_RAY_AUTH_MODE", plan.ray_auth_mode),
        scalar("PLAN_RUNTIME_ENV", plan.runtime_env_path),
        scalar("PLAN_TRAIN_DEVICES", devices),
        scalar("PLAN_GPU_NOTE", gpu_note),
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------ health


def is_healthy(url: str, timeout_s: float = 2.0, api_key: str | None = None) -> bool:
    """True when GET url answers 2xx within timeout_s."""
    request = urllib.request.Request(url, method="GET")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - http(s) URLs we built
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


# --------------------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recipes.commands", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    for what in ("trainer", "vllm", "ray-submit", "plan", "runtime-env"):
        s = sub.add_parser(what)
        s.add_argument("--config", default=DEFAULT_CONFIG, help="config name in configs/ (default: %(default)s)")
        if what == "runtime-env":
            s.add_argument("--output", required=True, help="file to write (mode 600: it may hold secrets)")
        s.add_argument("overrides", nargs="*", help="hydra overrides")
    h = sub.add_parser("health")
    h.add_argument("urls", nargs="+")
    h.add_argument("--timeout", type=float, default=2.0)
    h.add_argument("--api-key-env", default="JUDGE_API_KEY")
    return p


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """CLI: print one command (shell-quoted), the plan, write the runtime env, or probe health."""
    args = _parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    if args.what == "health":
        key = env.get(args.api_key_env) or None
        return 0 if all(is_healthy(u, args.timeout, key) for u in args.urls) else 1
    try:
        plan = build_plan(args.config, args.overrides, env)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if args.what == "plan":
        sys.stdout.write(plan_to_bash(plan, env))
    elif args.what == "trainer":
        devices, _ = trainer_devices(plan, env, visible_gpu_count())
        prefix = f"CUDA_VISIBLE_DEVICES={devices} " if devices else ""
        sys.stdout.write(prefix + shlex.join(plan.trainer_cmd) + "\n")
    elif args.what == "vllm":  # with the GPUs serve_judge.sh gives it
        gpus = ",".join(plan.judge.gpus)
        prefix = f"CUDA_VISIBLE_DEVICES={gpus} " if gpus else ""
        sys.stdout.write(prefix + shlex.join(plan.vllm_cmd) + "\n")
    elif args.what == "ray-submit":  # the runtime env file first, as train_grpo.sh writes it
        submit = f"{RAY_AUTH_MODE_ENV}={shlex.quote(plan.ray_auth_mode)} {shlex.join(plan.submit_cmd)}"
        sys.stdout.write(f"{shlex.join(plan.runtime_env_cmd)} && {submit}\n")
    elif args.what == "runtime-env":
        import yaml

        data = build_runtime_env(RUNTIME_ENV_TEMPLATE, env)
        out = Path(args.output)
        write_private(out, yaml.safe_dump(data, sort_keys=False))
        forwarded = sorted(set(data["env_vars"]) & set(FORWARD_ENV))
        sys.stdout.write(f"wrote {out} (forwarded: {', '.join(forwarded) or 'nothing'})\n")
        held = [name for name in NODE_SECRETS if env.get(name)]
        if held:
            sys.stdout.write(
                f"not forwarded: {', '.join(held)} (secrets stay out of the job's runtime env: Ray workers read them "
                'from the environment of `ray start` on every node, README "Multi-node")\n'
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
