"""Judge client settings: JudgeConfig, read from reward kwargs and the JUDGE_* environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from judge.prompts import load_prompts

logger = logging.getLogger(__name__)

ENV_BASE_URL = "JUDGE_BASE_URL"
ENV_MODEL = "JUDGE_MODEL"
ENV_API_KEY = "JUDGE_API_KEY"

_ROUTER_NOTICE: list[bool] = []
_REPO_ROOT = Path(__file__).resolve().parents[1]


def _normalize_base_url(url: str) -> str:
    """Strip whitespace and one trailing '/'; the URL must be http(s)://host[:port]/.../v1."""
    u = str(url).strip().rstrip("/")
    if not (u.startswith("http://") or u.startswith("https://")) or not u.endswith("/v1") or u.count("/") < 3:
        raise ValueError(
            f"judge base URL {url!r} is not an OpenAI-compatible base URL: expected 'http(s)://HOST:PORT/v1' "
            f"(ending in /v1, e.g. http://127.0.0.1:8000/v1)"
        )
    return u


def _prompts_path(value: Any) -> str:
    """The absolute path of a prompts file that loads (else ValueError naming it); "" means judge/prompts.yaml."""
    text = str(value or "").strip()
    if not text:
        return ""
    path = Path(text)
    if not path.is_absolute():
        path = _REPO_ROOT / path
    try:
        load_prompts(str(path))
    except ValueError as exc:
        raise ValueError(f"JudgeConfig.prompts_path: {exc}") from exc
    return str(path)


def _to_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {value!r}")


def _split_urls(value: Any) -> list[str]:
    """A URL, a comma-separated string of URLs, or a list/tuple (incl. OmegaConf ListConfig) of them."""
    if value is None:
        return []
    if isinstance(value, str):
        return [u.strip() for u in value.split(",") if u.strip()]
    try:
        items = list(value)
    except TypeError as exc:
        raise ValueError(f"judge_base_url must be a string or a list of strings, got {value!r}") from exc
    out: list[str] = []
    for item in items:
        out.extend(_split_urls(str(item)))
    return out


def _router_url(address: Any) -> str:
    """verl's reward_router_address ("ip:port", maybe with a scheme) → http://ip:port/v1."""
    addr = str(address).strip().rstrip("/")
    if not addr.startswith(("http://", "https://")):
        addr = f"http://{addr}"
    if not addr.endswith("/v1"):
        addr = f"{addr}/v1"
    return addr


@dataclass(frozen=True, repr=False)
class JudgeConfig:
    """Where and how to call the judge. Hashable: it keys the per-loop client registry."""

    base_urls: tuple[str, ...]
    model: str  # "" → the first id from GET /v1/models of each endpoint (looked up once per process)
    api_key: str | None = None
    timeout_s: float = 60.0  # bound on one attempt (connect + generation; a model lookup or a resend included)
    max_concurrency: int = 64  # requests in flight at once, over all endpoints
    max_retries: int = 3  # extra attempts after connection errors, timeouts, 429 and 5xx
    structured_output: bool = True  # send vLLM structured_outputs (choice / regex); auto-off on a 400
    max_consecutive_failures: int = 32  # failed calls in a row before JudgeUnavailableError
    cache_size: int = 65536  # LRU entries of (prompt → parsed result); 0 disables the cache
    max_pred_chars: int = 1000  # cap on the prediction shown to the judge
    max_tokens: int = 32  # judge answers are one short line
    backoff_s: float = 0.5  # first retry delay; doubles per attempt, with jitter
    backoff_max_s: float = 8.0  # cap on one retry delay
    queue_timeout_s: float = 600.0  # bound on waiting for a concurrency slot
    retry_after_max_s: float = 30.0  # cap on a server's Retry-After (429) that the client honours
    probe_after_s: float = 10.0  # wait before the half-open re-probe of a tripped judge / a sick endpoint
    max_reply_bytes: int = 262144  # a reply body is read (decoded) up to this many bytes; a longer one is a failure
    # Prompts YAML overriding sections of judge/prompts.yaml (a recipe's grade wording); "" = judge/prompts.yaml.
    # Relative paths are read from the repository root. The messages it builds key the client's cache.
    prompts_path: str = ""

    @property
    def call_budget_s(self) -> float:
        """Longest one call may take once it holds a slot: every attempt's timeout plus every nominal backoff."""
        backoffs = sum(min(self.backoff_max_s, self.backoff_s * 2**i) for i in range(self.max_retries))
        return (self.max_retries + 1) * self.timeout_s + backoffs

    @property
    def probe_budget_s(self) -> float:
        """Longest a half-open re-probe takes: its quiet wait, then every endpoint at once within timeout_s."""
        return self.probe_after_s + self.timeout_s

    @property
    def worst_case_s(self) -> float:
        """Longest one call takes from the caller's side (its deadline): slot wait + attempts + the stop's re-probe."""
        return self.queue_timeout_s + self.call_budget_s + self.probe_budget_s

    def __post_init__(self) -> None:
        """Normalise URLs and check ranges; errors name the bad field."""
        urls = (self.base_urls,) if isinstance(self.base_urls, str) else tuple(self.base_urls)
        if not urls:
            raise ValueError("JudgeConfig.base_urls is empty: give at least one URL like http://127.0.0.1:8000/v1")
        normalized = tuple(dict.fromkeys(_normalize_base_url(u) for u in urls))
        object.__setattr__(self, "base_urls", normalized)
        object.__setattr__(self, "model", str(self.model or "").strip())
        object.__setattr__(self, "api_key", (str(self.api_key).strip() or None) if self.api_key else None)
        object.__setattr__(self, "prompts_path", _prompts_path(self.prompts_path))
        checks = {
            "timeout_s": self.timeout_s > 0,
            "max_concurrency": self.max_concurrency >= 1,
            "max_retries": self.max_retries >= 0,
            "max_consecutive_failures": self.max_consecutive_failures >= 1,
            "cache_size": self.cache_size >= 0,
            "max_pred_chars": self.max_pred_chars >= 1,
            "max_tokens": self.max_tokens >= 1,
            "backoff_s": self.backoff_s >= 0,
            "backoff_max_s": self.backoff_max_s >= 0,
            "queue_timeout_s": self.queue_timeout_s > 0,
            "retry_after_max_s": self.retry_after_max_s >= 0,
            "probe_after_s": self.probe_after_s >= 0,
            "max_reply_bytes": self.max_reply_bytes >= 1024,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"JudgeConfig.{name} is out of range: {getattr(self, name)!r}")

    def __repr__(self) -> str:
        """Like the dataclass repr, with the API key redacted."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_key" and value:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return f"JudgeConfig({', '.join(parts)})"

    __str__ = __repr__

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None, env: Mapping[str, str] | None = None) -> JudgeConfig | None:
        """Config from reward kwargs, falling back to env JUDGE_BASE_URL / JUDGE_MODEL / JUDGE_API_KEY; None if no URL.

        `reward_router_address` ("ip:port", passed by verl when it serves the judge) wins over judge_base_url.
        """
        kw = {k: v for k, v in dict(kwargs or {}).items() if v is not None}
        env = os.environ if env is None else env
        if kw.get("reward_router_address"):
            urls = [_router_url(kw["reward_router_address"])]
            if kw.get("judge_base_url") and not _ROUTER_NOTICE:
                _ROUTER_NOTICE.append(True)  # once per process: from_kwargs runs for every scored response
                logger.info("judge: reward_router_address is set; using it instead of judge_base_url")
        else:
            urls = _split_urls(kw.get("judge_base_url")) or _split_urls(env.get(ENV_BASE_URL))
        if not urls:
            return None
        model = str(kw.get("judge_model") or env.get(ENV_MODEL) or "")
        api_key = kw.get("judge_api_key") or env.get(ENV_API_KEY) or None
        extra: dict[str, Any] = {}
        converters: dict[str, Callable[[Any], Any]] = {
            "timeout_s": float,
            "max_concurrency": int,
            "max_retries": int,
            "max_consecutive_failures": int,
            "cache_size": int,
            "max_pred_chars": int,
            "max_tokens": int,
            "backoff_s": float,
            "backoff_max_s": float,
            "queue_timeout_s": float,
            "retry_after_max_s": float,
            "probe_after_s": float,
            "max_reply_bytes": int,
            "prompts_path": str,
        }
        for name, conv in converters.items():
            key = name if name in kw else f"judge_{name}"
            if key in kw:
                try:
                    extra[name] = conv(kw[key])
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"reward kwarg {key}={kw[key]!r} is not a valid {conv.__name__}") from exc
        for key in ("structured_output", "judge_structured_output"):
            if key in kw:
                extra["structured_output"] = _to_bool(kw[key], key)
                break
        return cls(base_urls=tuple(urls), model=model, api_key=str(api_key) if api_key else None, **extra)
