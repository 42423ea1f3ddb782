"""Judge prompts: read once from judge/prompts.yaml (or a file overriding some sections), made into chat messages."""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PROMPTS_PATH = Path(__file__).with_name("prompts.yaml")
DEFAULT_MAX_PRED_CHARS = 1000

_PLACEHOLDER = re.compile(r"\{(label|gold|pred)\}")
# What a fence marker inside an answer becomes.
MARKER_REMOVED = "[分隔标记已移除]"
# Characters a reader takes for an angle bracket that NFKC leaves alone (it already folds ＜ ﹤ ＞ ﹥ and 〈 〉).
_READS_AS_OPEN = "‹«〈《⟨⟪❬❮❰⧼≪⋘ᐸ\u2329"
_READS_AS_CLOSE = "›»〉》⟩⟫❭❯❱⧽≫⋙ᐳ\u232a"
# Letters that show nothing (Hangul fillers, the braille blank): dropped like invisible characters.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# One token as a reader takes it in: an HTML character reference (an LLM reads &lt; as <), else one character.
_TOKEN = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?|.", re.DOTALL)
# Runs of 3+ of one angle bracket (any width or lookalike) inside an answer are shortened to 2.
_BRACKET_RUN = re.compile(f"([<>＜＞﹤﹥{_READS_AS_OPEN}{_READS_AS_CLOSE}])\\1{{2,}}")
# Lone surrogates (a str can hold them, UTF-8 cannot encode them) become U+FFFD before anything is sent or hashed.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class PromptTemplate:
    """A system + user message pair with {label}/{gold}/{pred} slots."""

    system: str
    user: str


@dataclass(frozen=True)
class Prompts:
    """All judge prompts and fencing settings from one YAML file."""

    grade: PromptTemplate
    term_error: PromptTemplate
    fence_start: str
    fence_end: str
    truncation_note: str
    empty_pred: str
    structured_outputs: dict[str, dict[str, Any]]
    path: str
    # (character, what a reader takes it for): variant forms of the fence markers' characters (traditional ...)
    fence_lookalikes: tuple[tuple[str, str], ...] = ()


def _require_str(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: field '{key}' must be a non-empty string, got {value!r}")
    return value


def _template(
    data: dict[str, Any], name: str, path: str, fences: tuple[str, str], slots: tuple[str, ...]
) -> PromptTemplate:
    where = f"{path}: '{name}'"
    section = data.get(name)
    if not isinstance(section, dict):
        raise ValueError(f"{where} must be a mapping with 'system' and 'user', got {type(section).__name__}")
    system = section.get("system") or ""
    if not isinstance(system, str):
        raise ValueError(f"{where}.system must be a string, got {type(system).__name__}")
    user = _require_str(section, "user", where)
    for slot in slots:
        if "{" + slot + "}" not in user:
            raise ValueError(f"{where}.user must contain the placeholder {{{slot}}}")
    start, end = fences
    if user.count(start) != 1 or user.count(end) != 1 or user.count("{pred}") != 1:
        raise ValueError(f"{where}.user must contain {start!r}, {{pred}} and {end!r} exactly once each")
    if not user.index(start) < user.index("{pred}") < user.index(end):
        raise ValueError(f"{where}.user must place {{pred}} between {start!r} and {end!r}")
    return PromptTemplate(system=system.strip(), user=user.strip())


def _lookalikes(data: dict[str, Any], path: str) -> tuple[tuple[str, str], ...]:
    """fence_lookalikes: a mapping from one character to the characters read as it; errors name the file."""
    raw = data.get("fence_lookalikes") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: 'fence_lookalikes' must map a character to its lookalikes, e.g. {{预: 預}}")
    pairs = []
    for char, variants in raw.items():
        if not (isinstance(char, str) and len(char) == 1 and isinstance(variants, str) and variants):
            raise ValueError(
                f"{path}: fence_lookalikes entry {char!r}: {variants!r} must map one character to a string of "
                "the characters a reader takes for it"
            )
        pairs.extend((v, char) for v in variants)
    return tuple(pairs)


def parse_prompts(data: Any, path: str = "<prompts>") -> Prompts:
    """Validate a loaded prompts mapping; errors name the file and field."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    fence_start = _require_str(data, "fence_start", path)
    fence_end = _require_str(data, "fence_end", path)
    fences = (fence_start, fence_end)
    so = data.get("structured_outputs") or {}
    if not isinstance(so, dict) or not all(isinstance(v, dict) for v in so.values()):
        raise ValueError(f"{path}: 'structured_outputs' must map a prompt name to a mapping (e.g. {{choice: [...]}})")
    return Prompts(
        grade=_template(data, "grade", path, fences, ("label", "gold", "pred")),
        term_error=_template(data, "term_error", path, fences, ("gold", "pred")),
        fence_start=fence_start,
        fence_end=fence_end,
        truncation_note=str(data.get("truncation_note") or ""),
        empty_pred=str(data.get("empty_pred") or ""),
        structured_outputs={str(k): dict(v) for k, v in so.items()},
        path=path,
        fence_lookalikes=_lookalikes(data, path),
    )


_SECTIONS = frozenset(
    {
        "fence_start",
        "fence_end",
        "fence_lookalikes",
        "truncation_note",
        "empty_pred",
        "grade",
        "term_error",
        "structured_outputs",
    }
)


def _read_yaml(file: Path) -> dict[str, Any]:
    """A prompts YAML file's top-level mapping; errors name the file."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read judge prompts file {file}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{file}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{file}: top level must be a mapping, got {type(data).__name__}")
    return data


@functools.lru_cache(maxsize=8)
def load_prompts(path: str | None = None) -> Prompts:
    """Load and validate a prompts YAML (cached: read once per process and path).

    A file other than judge/prompts.yaml may hold only the sections it changes (a recipe's own ``grade`` wording,
    say); every other section comes from judge/prompts.yaml. A section it names replaces that section whole.
    """
    base = _read_yaml(DEFAULT_PROMPTS_PATH)
    if not path or Path(path).resolve() == DEFAULT_PROMPTS_PATH.resolve():
        return parse_prompts(base, str(DEFAULT_PROMPTS_PATH))
    file = Path(path)
    data = _read_yaml(file)
    unknown = sorted(str(k) for k in data if k not in _SECTIONS)
    if unknown:
        raise ValueError(
            f"{file}: unknown section(s) {', '.join(unknown)}; expected some of {', '.join(sorted(_SECTIONS))}"
        )
    return parse_prompts({**base, **data}, str(file))


def encodable(text: str) -> str:
    """text with lone surrogates replaced by U+FFFD, so it always encodes as UTF-8 (linear time)."""
    return _SURROGATE.sub("\ufffd", text)


class _FenceReader:
    """Text as a reader sees it, for finding fence markers: letters, digits and angle brackets only.

    A token (a character, or an HTML character reference read as what it stands for) is NFKC-folded (width,
    compatibility forms), case-folded, its bracket lookalikes read as < and >, the markers' variant characters
    (fence_lookalikes) read as the markers' own; what is left that is not a letter, a digit or a bracket (spaces,
    invisible and format characters, combining marks, punctuation) is not seen.
    """

    def __init__(self, markers: tuple[str, ...], lookalikes: tuple[tuple[str, str], ...]) -> None:
        self._table = {ord(c): "<" for c in _READS_AS_OPEN} | {ord(c): ">" for c in _READS_AS_CLOSE}
        self._table |= {ord(variant): char for variant, char in lookalikes}
        self._seen: dict[str, str] = {}
        cores = sorted({self.view(m).strip("<>") for m in markers} - {""}, key=len, reverse=True)
        # The look-behind anchors a match at the first bracket of a run: without it every position inside a run of
        # brackets starts a new attempt that scans the rest of the run, quadratic in the run's length.
        self.pattern = re.compile(r"(?<!<)<*(?:" + "|".join(map(re.escape, cores)) + r")>*") if cores else None

    def view(self, token: str) -> str:
        """What a reader sees of one token (memoised: answers repeat few distinct characters)."""
        seen = self._seen.get(token)
        if seen is None:
            text = html.unescape(token) if token.startswith("&") else token
            folded = unicodedata.normalize("NFKC", text).casefold().translate(self._table)
            seen = "".join(
                ch for ch in folded if ch in "<>" or (ch not in _BLANK_LETTERS and unicodedata.category(ch)[0] in "LN")
            )
            if len(self._seen) < 65536:
                self._seen[token] = seen
        return seen

    def remove_markers(self, text: str) -> str:
        """text with every stretch that reads as a fence marker (with its brackets) replaced by MARKER_REMOVED."""
        if self.pattern is None:
            return text
        tokens: list[str] | str = _TOKEN.findall(text) if "&" in text else text
        views = [self.view(token) for token in tokens]
        seen = "".join(views)
        if self.pattern.search(seen) is None:
            return text  # the common case: one pass over the text, nothing to map back
        spans: list[tuple[int, int]] = []  # for each seen character, the stretch of text it came from
        at = 0
        for token, view in zip(tokens, views, strict=True):
            spans += [(at, at + len(token))] * len(view)
            at += len(token)
        pieces = []
        last = 0
        for m in self.pattern.finditer(seen):
            start, end = max(spans[m.start()][0], last), spans[m.end() - 1][1]
            pieces += [text[last:start], MARKER_REMOVED]
            last = end
        pieces.append(text[last:])
        return "".join(pieces)


@functools.lru_cache(maxsize=8)
def _fence_reader(markers: tuple[str, ...], lookalikes: tuple[tuple[str, str], ...]) -> _FenceReader:
    return _FenceReader(markers, lookalikes)


def neutralize(text: str, prompts: Prompts | None = None) -> str:
    """Remove what reads as a fence marker from an answer and shorten bracket runs, so it cannot close the fence.

    A marker is found by what a reader sees (_FenceReader): spaced, zero-width-joined, soft-hyphenated, full-width,
    traditional, HTML-escaped or lookalike-bracketed forms are markers too. Linear in len(text); callers still cap
    model text first (fence_prediction does).
    """
    p = prompts or load_prompts()
    reader = _fence_reader((p.fence_start, p.fence_end), p.fence_lookalikes)
    out = reader.remove_markers(encodable(text))
    return _BRACKET_RUN.sub(lambda m: m.group(1) * 2, out)


def fence_prediction(pred: str, max_pred_chars: int = DEFAULT_MAX_PRED_CHARS, prompts: Prompts | None = None) -> str:
    """The prediction as it goes inside the fence: stripped, capped at max_pred_chars characters, neutralised.

    The cap comes first, so the work done on a prediction is bounded by max_pred_chars whatever its length.
    """
    if max_pred_chars < 1:
        raise ValueError(f"max_pred_chars must be >= 1, got {max_pred_chars}")
    p = prompts or load_prompts()
    text = (pred if isinstance(pred, str) else str(pred or "")).strip()
    cut = len(text) > max_pred_chars
    text = neutralize(text[:max_pred_chars].rstrip() if cut else text, p)
    if not text:
        return p.empty_pred
    return text + p.truncation_note if cut else text


def _fill(template: str, values: dict[str, str]) -> str:
    """Single-pass substitution of {label}/{gold}/{pred} (inserted text is never re-scanned)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _messages(template: PromptTemplate, values: dict[str, str]) -> list[dict[str, str]]:
    messages = []
    if template.system:
        messages.append({"role": "system", "content": _fill(template.system, values)})
    messages.append({"role": "user", "content": _fill(template.user, values)})
    return messages


def build_grade_messages(
    label: str, gold: str, pred: str, max_pred_chars: int = DEFAULT_MAX_PRED_CHARS, prompts: Prompts | None = None
) -> list[dict[str, str]]:
    """Chat messages asking the judge to grade pred against gold as 2 (correct), 1 (partly) or 0 (wrong)."""
    p = prompts or load_prompts()
    values = {
        "label": str(label).strip(),
        "gold": neutralize(str(gold).strip(), p),
        "pred": fence_prediction(pred, max_pred_chars, p),
    }
    return _messages(p.grade, values)


def build_term_error_messages(
    gold: str, pred: str, max_pred_chars: int = DEFAULT_MAX_PRED_CHARS, prompts: Prompts | None = None
) -> list[dict[str, str]]:
    """Chat messages asking the judge for the prison-term error in months ("误差：N个月")."""
    p = prompts or load_prompts()
    values = {"label": "", "gold": neutralize(str(gold).strip(), p), "pred": fence_prediction(pred, max_pred_chars, p)}
    return _messages(p.term_error, values)


def structured_output_spec(kind: str, prompts: Prompts | None = None) -> dict[str, Any] | None:
    """vLLM structured_outputs parameters for a prompt kind ('grade' / 'term_error'), or None."""
    p = prompts or load_prompts()
    spec = p.structured_outputs.get(kind)
    return dict(spec) if spec else None
