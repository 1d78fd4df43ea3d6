"""Segment names and suggested actions from a profile, by rules read from a config file.

Levels: a column is "high" for a segment only when the segment's customers rank
above all customers by at least ``levels.min_difference`` (default 0.3) standard
deviations of the ranks, AND the segment's mean and median are both above those of
all customers; "low" mirrors it; otherwise "mid" (worded "Average"). The rank
difference is (mean percentile rank of the segment's customers - that of all
customers) / the standard deviation of all customers' percentile ranks: scale-free
and robust to skewed columns and extreme customers, so a segment is never "high
cash advance" at 0.63x the average, nor "low" at +0.43 sd. 0.3 is at least the
0.25 of the issue that asked for it: the Mall table's 80-customer middle segment,
-0.24 to -0.26 on income ranks, stays "average income".

A segment that holds at least ``bulk.share`` of the customers (default half) with
every column at "mid" is "the bulk of customers" (``bulk.name``), never a target:
its only action says so (``bulk.action``).

Reproducible by construction: a segment's name depends only on its levels
(low/mid/high of each column relative to the whole customer base), its
standardized differences, its size and the naming config
(``conf/naming/default.yaml``), never on label ids or randomness. The wording,
the archetype rules and the actions all live in that file so a marketer edits
them without touching code. Any table works: a column without configured
wording reads as its header in words (``PURCHASES_FREQUENCY`` -> "purchases
frequency"), and an action that needs a kind of column (recency for a
win-back) is only suggested when the table has one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any

import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from segexp.contract import NOISE_LABEL
from segexp.errors import ConfigError

LEVELS = ("low", "mid", "high")
_SIDES = ("lower", "higher")
NAME_FROM = ("features", "profiled")
_ACTION_KEYS = {"text", "requires"}
DEFAULT_NAMING_FILE = Path(__file__).resolve().parents[1] / "conf" / "naming" / "default.yaml"
_KEY = "naming"
# Label of segment -1 (customers DBSCAN left out of every segment) unless naming.noise.name says.
NOT_ASSIGNED = "Not assigned"
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_UNIT = re.compile(r"[(\[{][^)\]}]*[)\]}]")  # "(k$)", "[EUR]", "(1-100)"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\W_]+")


def readable_label(header: Any) -> str:
    """A column header in lower-case words: 'CashAdvanceTrx' -> 'cash advance trx'.

    Units in brackets are left out ('Income (k$)' -> 'income') so names read as words.
    """
    text = str(header)
    for kept in (_UNIT.sub(" ", text), text):  # a header that is only a unit keeps it
        label = " ".join(w for w in _SEPARATORS.split(_CAMEL.sub(" ", kept)) if w).lower()
        if label:
            return label
    return text.strip().lower()


def plain_words(header: Any, vocabulary: Mapping[str, str]) -> str:
    """A header in plain words, abbreviations spelled out by ``vocabulary`` (``naming.words``):
    'MntWines' -> 'spend on wines', 'PRC_FULL_PAYMENT' -> 'share of full payment'."""
    return " ".join(vocabulary.get(w, w) for w in readable_label(header).split())


def column_key(header: Any) -> str:
    """The name a header is matched on in the config: 'Annual Income (k$)' -> 'annual_income'."""
    return readable_label(header).replace(" ", "_")


def _words_in(words: Sequence[str], pattern: Sequence[str]) -> bool:
    n = len(pattern)
    return n > 0 and any(list(words[i : i + n]) == list(pattern) for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class Action:
    """A suggested action and the columns (or roles such as ``recency``) it needs."""

    text: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Meaning:
    """What a column means (money spent, recency, ...), found by its header words, and the
    action a segment high or low on such a column gets."""

    key: str
    words: tuple[str, ...]
    actions: dict[str, str]  # level (low/high) -> action text


@dataclass(frozen=True)
class Archetype:
    key: str
    name: str
    when: dict[str, tuple[str, ...]]
    actions: tuple[Action, ...]

    def matches(self, levels: Mapping[str, str]) -> bool:
        return all(_level_of(levels, col) in allowed for col, allowed in self.when.items())


def _level_of(levels: Mapping[str, str], column: str) -> str | None:
    """A column's level, found by its header or its canonical name ('Age' meets a rule on age)."""
    if column in levels:
        return levels[column]
    key = column_key(column)
    return next((v for c, v in levels.items() if column_key(c) == key), None)


@dataclass(frozen=True)
class NamingConfig:
    """The validated naming config (see conf/naming/default.yaml for each key's meaning)."""

    min_difference: float  # rank difference (sd of ranks) a level word needs; see the docstring
    default_words: dict[str, str]
    columns: dict[str, dict[str, Any]]
    max_name_parts: int
    separator: str
    qualifier_format: str
    relative_words: dict[str, str]
    relative_min_gap: float
    gender_majority_share: float
    gender_words: dict[str, str]
    noise_name: str  # the label of segment -1 (DBSCAN noise): never a profile, never actions
    default_actions: tuple[Action, ...]
    archetypes: tuple[Archetype, ...]
    name_from: str = "features"
    generic_action: str | None = None
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    bulk_share: float = 0.5
    bulk_name: str = "Bulk of customers"
    bulk_action: str = "Not a target: the bulk of customers, no column sets them apart"
    words: dict[str, str] = field(default_factory=dict)  # abbreviation -> plain words
    meanings: tuple[Meaning, ...] = ()
    action_format: str = "{action} ({trigger})"
    size_format: str = "{n} customers"
    max_actions: int = 4

    def spec(self, column: str) -> dict[str, Any]:
        """A column's configured wording, by its header or its canonical name."""
        if column in self.columns:
            return self.columns[column]
        key = column_key(column)
        return next((s for c, s in self.columns.items() if column_key(c) == key), {})

    def label(self, column: str) -> str:
        """The column in words: its configured label, else its header in plain words."""
        return str(self.spec(column).get("label") or plain_words(column, self.words))

    def trait(self, column: str, level: str) -> str:
        """'high cash advance': a level word and the column, as actions name their trigger."""
        return f"{self.default_words[level].lower()} {self.label(column)}"

    def meaning(self, column: str) -> Meaning | None:
        """The first meaning whose words are among the header's (raw or spelled out)."""
        heads = [readable_label(column).split(), plain_words(column, self.words).split()]
        for meaning in self.meanings:
            patterns = [readable_label(w).split() for w in meaning.words]
            if any(_words_in(head, p) for head in heads for p in patterns):
                return meaning
        return None

    def part(self, column: str, level: str) -> str:
        """How a column at a level reads in a name: 'High income', 'Young'."""
        words = self.spec(column).get("words") or {}
        if level in words:
            return str(words[level])
        return f"{self.default_words[level]} {self.label(column)}"

    def relative(self, column: str, side: str) -> str:
        """How 'lower'/'higher' on a column reads: 'higher income', 'older'."""
        words = self.spec(column).get("relative") or {}
        if side in words:
            return str(words[side])
        return f"{self.relative_words[side]} {self.label(column)}"

    def supports(self, requirement: str, columns: Sequence[str]) -> bool:
        """Whether the table has the column (or a column of the role) an action needs.

        A requirement is met by a column of that name, or by a column whose header words
        contain the requirement or one of its role's words (``roles`` in the config).
        """
        if requirement in columns:
            return True
        meant = next((m.words for m in self.meanings if m.key == requirement), ())
        patterns = [
            readable_label(p).split()
            for p in (requirement, *self.roles.get(requirement, ()), *meant)
        ]
        headers = [readable_label(c).split() for c in columns]
        return any(_words_in(words, p) for words in headers for p in patterns)

    def allowed(self, actions: Sequence[Action], columns: Sequence[str]) -> tuple[str, ...]:
        """The texts of the actions whose requirements the table meets."""
        return tuple(a.text for a in actions if all(self.supports(r, columns) for r in a.requires))


@dataclass(frozen=True)
class SegmentName:
    """A segment's name, the rule that gave it, its levels and suggested actions."""

    segment: int
    name: str
    archetype: str | None
    description: str
    levels: dict[str, str] = field(default_factory=dict)
    actions: tuple[str, ...] = ()


def _container(source: DictConfig | Mapping | str | Path | None) -> tuple[dict, str]:
    if source is None:
        source = DEFAULT_NAMING_FILE
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{_KEY}: naming config file {path} does not exist; pass a YAML file like "
                f"{DEFAULT_NAMING_FILE}"
            )
        try:
            loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
        except yaml.YAMLError as exc:  # syntax: say where
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ConfigError(
                f"{_KEY}: {path} is not valid YAML{where}: {problem}; quote texts that contain ': '"
            ) from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{_KEY}: {path} must hold a mapping of naming keys; got a list")
        return loaded or {}, str(path)
    if isinstance(source, DictConfig):
        container = OmegaConf.to_container(source, resolve=True)
        assert isinstance(container, dict)  # a DictConfig's container is a dict
        return container or {}, _KEY
    return dict(source), _KEY


def _require(value: Any, key: str, kind: type | UnionType | tuple, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{key}: expected {what}; got {value!r}")
    return value


def _strings(value: Any, key: str) -> tuple[str, ...]:
    _require(value, key, list, "a list of texts")
    what = "a text (quote texts that contain ': ')"
    return tuple(str(_require(v, f"{key}[{i}]", str, what)) for i, v in enumerate(value))


def _actions(value: Any, key: str) -> tuple[Action, ...]:
    """Plain texts, or mappings {text, requires} for actions only some tables support."""
    _require(value, key, list, "a list of actions")
    actions = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            actions.append(Action(item))
            continue
        well_formed = isinstance(item, dict) and isinstance(item.get("text"), str)
        if not well_formed or set(item) - _ACTION_KEYS:
            raise ConfigError(
                f"{where}: expected a text (quote texts that contain ': ') or a mapping "
                f"{{text: ..., requires: [column or role, ...]}}; got {item!r}"
            )
        requires = item.get("requires") or []
        requires = [requires] if isinstance(requires, str) else requires
        actions.append(Action(item["text"], _strings(requires, f"{where}.requires")))
    return tuple(actions)


def _levels_of(value: Any, key: str) -> tuple[str, ...]:
    allowed = [value] if isinstance(value, str) else value
    if not isinstance(allowed, list) or not allowed:
        raise ConfigError(f"{key}: expected a level ({', '.join(LEVELS)}) or a list; got {value!r}")
    for level in allowed:
        if level not in LEVELS:
            raise ConfigError(
                f"{key}: level must be one of {', '.join(LEVELS)}; got {level!r} "
                "(edit the archetype's `when`)"
            )
    return tuple(allowed)


def _check_format(fmt: Any, fields: tuple[str, ...], key: str, example: str) -> None:
    """A format text that uses each of its fields (qualifier_format: {name} and {qualifier})."""
    try:
        a, b = (fmt.format(**{f: f"{f}{v}" for f in fields}) for v in ("1", "2"))
        ok = all(f"{f}1" in a for f in fields) and a != b
    except (AttributeError, KeyError, IndexError, ValueError):
        ok = False
    if not ok:
        uses = " and ".join(f"{{{f}}}" for f in fields)
        raise ConfigError(f"{key}: expected a text using {uses} such as {example!r}; got {fmt!r}")


def _meanings(value: Any, key: str) -> tuple[Meaning, ...]:
    """``meanings``: name -> {words: [header words], low: action, high: action}, in order."""
    _require(value, key, dict, "a mapping meaning: {words: [...], low: ..., high: ...}")
    meanings = []
    for name, spec in value.items():
        where = f"{key}.{name}"
        _require(spec, where, dict, "a mapping with words and a low and/or high action")
        unknown = sorted(set(spec) - {"words", "low", "high"})
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}: no such key; a meaning takes words, low and high"
            )
        actions = {
            lv: str(_require(spec[lv], f"{where}.{lv}", str, "an action text"))
            for lv in ("low", "high")
            if spec.get(lv) is not None
        }
        meanings.append(
            Meaning(str(name), _strings(spec.get("words") or [], f"{where}.words"), actions)
        )
    return tuple(meanings)


def load_naming_config(source: DictConfig | Mapping | str | Path | None = None) -> NamingConfig:
    """Validate a naming config (composed ``cfg.naming``, a mapping or a YAML file path).

    An empty config (``{}``) means the defaults shipped in conf/naming/default.yaml.
    """
    raw, where = _container(source)
    if not raw:
        raw, where = _container(DEFAULT_NAMING_FILE)
    p = f"{where}:" if where != _KEY else f"{_KEY}."

    levels = _require(raw.get("levels") or {}, f"{p}levels", dict, "a mapping")
    unknown = sorted(set(levels) - {"min_difference"})
    if unknown:
        raise ConfigError(
            f"{p}levels.{unknown[0]}: no such key; levels take min_difference (a rank "
            "difference in standard deviations, e.g. 0.3): terciles are no longer used"
        )
    min_difference = levels.get("min_difference", 0.3)
    _require(min_difference, f"{p}levels.min_difference", int | float, "a number such as 0.3")
    if min_difference <= 0:
        raise ConfigError(f"{p}levels.min_difference: expected a number > 0; got {min_difference}")

    default_words = _require(raw.get("default_words") or {}, f"{p}default_words", dict, "a mapping")
    missing = [lv for lv in LEVELS if lv not in default_words]
    if missing:
        raise ConfigError(
            f"{p}default_words: needs a word for each level low, mid, high; "
            f"missing {', '.join(missing)}"
        )
    columns = _require(raw.get("columns") or {}, f"{p}columns", dict, "a mapping")
    for column, spec in columns.items():
        _require(spec, f"{p}columns.{column}", dict, "a mapping with label and/or words")
        words = spec.get("words") or {}
        bad = [w for w in words if w not in LEVELS]
        if bad:
            raise ConfigError(
                f"{p}columns.{column}.words: keys must be levels low, mid, high; got {bad[0]!r}"
            )

        relative = spec.get("relative") or {}
        bad = [w for w in relative if w not in _SIDES]
        if bad:
            raise ConfigError(
                f"{p}columns.{column}.relative: keys must be lower, higher; got {bad[0]!r}"
            )
    relative_words = _require(
        raw.get("relative_words") or {"lower": "lower", "higher": "higher"},
        f"{p}relative_words",
        dict,
        "a mapping with lower and higher",
    )
    missing = [side for side in _SIDES if side not in relative_words]
    if missing:
        raise ConfigError(f"{p}relative_words: needs lower and higher; missing {missing[0]}")
    min_gap = raw.get("relative_min_gap", 0.25)
    _require(min_gap, f"{p}relative_min_gap", int | float, "a number of standard deviations")

    archetypes = []
    seen_keys: set[str] = set()
    for i, item in enumerate(raw.get("archetypes") or []):
        key = f"{p}archetypes[{i}]"
        _require(item, key, dict, "a mapping with key, name, when, actions")
        name = _require(item.get("name"), f"{key}.name", str, "a name")
        when = _require(item.get("when") or {}, f"{key}.when", dict, "a mapping column: level")
        arch_key = str(item.get("key") or name)
        if arch_key in seen_keys:
            raise ConfigError(f"{key}.key: archetype keys must be unique; '{arch_key}' repeats")
        seen_keys.add(arch_key)
        archetypes.append(
            Archetype(
                key=arch_key,
                name=name,
                when={str(c): _levels_of(v, f"{key}.when.{c}") for c, v in when.items()},
                actions=_actions(item.get("actions") or [], f"{key}.actions"),
            )
        )

    gender = raw.get("gender") or {}
    noise = raw.get("noise") or {}
    formats = {  # key: (its fields, the default)
        "qualifier_format": (("name", "qualifier"), "{name} ({qualifier})"),
        "action_format": (("action", "trigger"), "{action} ({trigger})"),
        "size_format": (("n",), "{n} customers"),
    }
    for fmt_key, (fields, default) in formats.items():
        _check_format(raw.get(fmt_key, default), fields, f"{p}{fmt_key}", default)
    name_from = raw.get("name_from", "features")
    if name_from not in NAME_FROM:
        raise ConfigError(
            f"{p}name_from: allowed values are {', '.join(NAME_FROM)}; got {name_from!r}"
        )
    generic_action = raw.get("generic_action") or None
    if generic_action is not None:
        try:
            ok = generic_action.format(traits="x") != generic_action.format(traits="y")
        except (AttributeError, KeyError, IndexError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                f"{p}generic_action: expected a text using {{traits}} such as "
                f"'Target on {{traits}}', or null; got {generic_action!r}"
            )
    roles = _require(raw.get("roles") or {}, f"{p}roles", dict, "a mapping role: [header words]")
    words = _require(raw.get("words") or {}, f"{p}words", dict, "a mapping abbreviation: words")
    max_actions = raw.get("max_actions", 4)
    _require(max_actions, f"{p}max_actions", int, "a whole number >= 1")
    max_parts = raw.get("max_name_parts", 3)
    _require(max_parts, f"{p}max_name_parts", int, "a whole number >= 1")
    if max_parts < 1:
        raise ConfigError(f"{p}max_name_parts: expected a whole number >= 1; got {max_parts}")
    bulk = _require(raw.get("bulk") or {}, f"{p}bulk", dict, "a mapping with share, name, action")
    bulk_share = bulk.get("share", 0.5)
    _require(bulk_share, f"{p}bulk.share", int | float, "a share such as 0.5")
    return NamingConfig(
        min_difference=float(min_difference),
        default_words={k: str(v) for k, v in default_words.items()},
        columns={str(k): dict(v) for k, v in columns.items()},
        max_name_parts=int(max_parts),
        separator=str(raw.get("separator", ", ")),
        qualifier_format=str(raw.get("qualifier_format", formats["qualifier_format"][1])),
        relative_words={k: str(v) for k, v in relative_words.items()},
        relative_min_gap=float(min_gap),
        gender_majority_share=float(gender.get("majority_share", 0.6)),
        gender_words={str(k): str(v) for k, v in (gender.get("words") or {}).items()},
        noise_name=str(noise.get("name") or NOT_ASSIGNED),
        default_actions=_actions(raw.get("default_actions") or [], f"{p}default_actions"),
        archetypes=tuple(archetypes),
        name_from=str(name_from),
        generic_action=generic_action,
        roles={str(r): _strings(w, f"{p}roles.{r}") for r, w in roles.items()},
        bulk_share=float(bulk_share),
        bulk_name=str(bulk.get("name") or NamingConfig.bulk_name),
        bulk_action=str(bulk.get("action") or NamingConfig.bulk_action),
        words={str(k).lower(): str(v) for k, v in words.items()},
        meanings=_meanings(raw.get("meanings") or {}, f"{p}meanings"),
        action_format=str(raw.get("action_format", formats["action_format"][1])),
        size_format=str(raw.get("size_format", formats["size_format"][1])),
        max_actions=max(1, int(max_actions)),
    )


def rank_differences(values: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Segments x columns: (mean percentile rank of the segment's customers - that of all
    customers) / standard deviation of all customers' percentile ranks (NaN: constant)."""
    ranks = values.rank(pct=True)
    spread = ranks.std(ddof=0)
    return (ranks.groupby(np.asarray(labels)).mean() - ranks.mean()) / spread.where(spread > 0)


def level_words(
    rank_diff: pd.DataFrame,
    mean_gap: pd.DataFrame,
    median_gap: pd.DataFrame,
    min_difference: float,
) -> pd.DataFrame:
    """high/low/mid: the rank difference at least ``min_difference`` in a direction, the
    segment's mean and median (gaps to all customers') on that side too; else mid."""
    rank, mean, median = (t.to_numpy(dtype=float) for t in (rank_diff, mean_gap, median_gap))
    high = (rank >= min_difference) & (mean > 0) & (median > 0)
    low = (rank <= -min_difference) & (mean < 0) & (median < 0)
    words = np.where(high, "high", np.where(low, "low", "mid"))
    return pd.DataFrame(words, index=rank_diff.index, columns=rank_diff.columns, dtype=object)


def level_table(
    frame: pd.DataFrame, labels: np.ndarray, columns: Sequence[str], config: NamingConfig
) -> pd.DataFrame:
    """low/mid/high per segment (rows) and column, by the rule of the module docstring."""
    values = frame[list(columns)].astype(float)
    grouped = values.groupby(np.asarray(labels))
    return level_words(
        rank_differences(values, labels),
        grouped.mean() - values.mean(),
        grouped.median() - values.median(),
        config.min_difference,
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[:2].isupper() else text


def distinguishing_columns(
    levels: Mapping[str, str],
    columns: Sequence[str],
    config: NamingConfig,
    std_diffs: Mapping[str, float] | None = None,
) -> list[str]:
    """The columns that set a segment apart most, in ``columns`` order (at most max_name_parts).

    Columns away from mid come first, then the largest absolute standardized difference
    from the base; ties keep column order, so the choice never depends on label ids.
    """
    present = [c for c in columns if c in levels]

    def strength(column: str) -> float:
        value = float((std_diffs or {}).get(column, 0.0))
        return abs(value) if np.isfinite(value) else 0.0

    ranked = sorted(
        range(len(present)), key=lambda i: (levels[present[i]] == "mid", -strength(present[i]), i)
    )
    kept = set(ranked[: config.max_name_parts])
    return [c for i, c in enumerate(present) if i in kept]


def describe_levels(
    levels: Mapping[str, str],
    columns: Sequence[str],
    config: NamingConfig,
    std_diffs: Mapping[str, float] | None = None,
) -> str:
    """'High income, low spending' from the levels of the most distinguishing columns."""
    chosen = distinguishing_columns(levels, columns, config, std_diffs)
    parts = [config.part(c, levels[c]) for c in chosen]
    if not parts:
        return "All customers"
    return config.separator.join([parts[0]] + [_lower_first(p) for p in parts[1:]])


def _joined(traits: Sequence[str]) -> str:
    return traits[0] if len(traits) == 1 else ", ".join(traits[:-1]) + " and " + traits[-1]


def _targeting(traits: Sequence[str], config: NamingConfig) -> str:
    """'Target on high purchases and low cash advance' ('' without traits)."""
    if not traits:
        return ""
    return (config.generic_action or "{traits}").format(traits=_joined(traits))


def _qualified(base: str, qualifiers: Sequence[str], config: NamingConfig) -> str:
    if not qualifiers:
        return base
    return config.qualifier_format.format(name=base, qualifier=", ".join(qualifiers))


def _collisions(names: Mapping[int, str]) -> list[list[int]]:
    by_name: dict[str, list[int]] = {}
    for segment, name in names.items():
        by_name.setdefault(name.casefold(), []).append(segment)
    return [sorted(group) for group in by_name.values() if len(group) > 1]


@dataclass
class _Qualifiers:
    """What tells colliding names apart, step by step (see ``_unique_names``)."""

    levels: Mapping[int, Mapping[str, str]]
    diffs: Mapping[int, Mapping[str, float]]
    used: Mapping[int, set[str]]
    config: NamingConfig
    added: dict[int, list[str]] = field(default_factory=dict)

    def add(self, segments: Sequence[int], qualifier: Mapping[int, str]) -> None:
        for s in segments:
            self.added.setdefault(s, []).append(qualifier[s])

    def by_level(self, group: list[int], candidates: Sequence[str]) -> None:
        """The first column whose level differs: 'Average customers (young)'."""
        for i, column in enumerate(candidates):
            if any(column in self.used[s] or column not in self.levels[s] for s in group):
                continue
            words = {
                s: _lower_first(self.config.part(column, self.levels[s][column])) for s in group
            }
            if len(set(words.values())) < 2:
                continue
            self.add(group, words)
            for same in _collisions(words):
                self.by_level(same, candidates[i + 1 :])
            return

    def by_gap(self, group: list[int], candidates: Sequence[str]) -> None:
        """Segments on the same levels: 'lower'/'higher' on the column with the widest gap
        between them (at least relative_min_gap sd), split again where needed."""
        best: tuple[float, str, list[int], int] | None = None
        for column in candidates:
            values = {s: self.diffs.get(s, {}).get(column, np.nan) for s in group}
            if not all(np.isfinite(v) for v in values.values()):
                continue
            ordered = sorted(group, key=lambda s: values[s])
            gaps = [values[b] - values[a] for a, b in zip(ordered, ordered[1:], strict=False)]
            cut = int(np.argmax(gaps))
            if best is None or gaps[cut] > best[0]:
                best = (gaps[cut], column, ordered, cut)
        if best is None or best[0] < self.config.relative_min_gap:
            return
        _, column, ordered, cut = best
        lower, higher = ordered[: cut + 1], ordered[cut + 1 :]
        self.add(lower, dict.fromkeys(lower, self.config.relative(column, "lower")))
        self.add(higher, dict.fromkeys(higher, self.config.relative(column, "higher")))
        rest = [c for c in candidates if c != column]
        for part in (lower, higher):
            if len(part) > 1:
                self.by_gap(part, rest)


def _unique_names(
    base: Mapping[int, str],
    qualifiers: _Qualifiers,
    candidates: Sequence[str],
    gender_major: Mapping[int, str | None],
    sizes: Mapping[int, int],
) -> dict[int, str]:
    """Names unique within the segmentation, told apart by a trait, never by a number: a
    column whose level differs, then the widest lower/higher gap, then the dominant gender,
    then the segment's size (and only for segments alike in all of these, its id)."""
    config = qualifiers.config

    def current() -> dict[int, str]:
        return {s: _qualified(n, qualifiers.added.get(s, []), config) for s, n in base.items()}

    steps = [
        lambda group: qualifiers.by_level(group, candidates),
        lambda group: qualifiers.by_gap(group, candidates),
        lambda group: (
            qualifiers.add(group, gender_major)  # type: ignore[arg-type]
            if None not in {gender_major.get(s) for s in group}
            and len({gender_major.get(s) for s in group}) == len(group)
            else None
        ),
        lambda group: qualifiers.add(
            group, {s: config.size_format.format(n=f"{sizes.get(s, 0):,}") for s in group}
        ),
        lambda group: qualifiers.add(group, {s: f"segment {s}" for s in group}),
    ]
    for step in steps:
        for group in _collisions(current()):
            step(group)
    return current()


def _segment_actions(
    levels: Mapping[str, str],
    match: Archetype | None,
    chosen: Sequence[str],
    diffs: Mapping[str, float],
    available: Sequence[str],
    config: NamingConfig,
) -> list[str]:
    """Actions from evidence, each naming the column and level that triggered it: the
    archetype's (its rule's levels), then one per meaning (money spent, recency, ...) of the
    columns away from average, strongest first; columns no meaning covers get the generic
    targeting action; a segment with none of these gets the default actions."""
    rule_columns = [
        c for c in levels if match and any(column_key(c) == column_key(w) for w in match.when)
    ]
    actions = []
    if match:
        trigger = ", ".join(config.trait(c, levels[c]) for c in rule_columns)
        actions += [
            config.action_format.format(action=text, trigger=trigger)
            for text in config.allowed(match.actions, available)
        ]

    def strength(column: str) -> float:
        value = float(diffs.get(column, 0.0))
        return -abs(value) if np.isfinite(value) else 0.0

    away = [c for c in levels if levels[c] != "mid" and c not in rule_columns]
    seen: set[tuple[str, str]] = set()
    explained = set()
    for column in sorted(away, key=strength):
        meaning = config.meaning(column)
        text = meaning.actions.get(levels[column]) if meaning else None
        if meaning is None or text is None:
            continue
        explained.add(column)
        if (meaning.key, levels[column]) in seen:
            continue
        seen.add((meaning.key, levels[column]))
        trigger = config.trait(column, levels[column])
        actions.append(config.action_format.format(action=text, trigger=trigger))
    if not match:
        rest = [config.trait(c, levels[c]) for c in chosen if c in away and c not in explained]
        actions += [_targeting(rest, config)] if rest and config.generic_action else []
    if not actions:
        actions = list(config.allowed(config.default_actions, available))
    return actions[: config.max_actions]


def _distinct_actions(
    actions: dict[int, list[str]],
    levels: Mapping[int, Mapping[str, str]],
    columns: Sequence[str],
    config: NamingConfig,
) -> None:
    """Segments whose levels differ never share an action list: each of them gains the
    targeting action on the columns where their levels differ (its own level)."""
    by_list: dict[frozenset[str], list[int]] = {}
    for segment, listed in actions.items():  # the same actions in another order are the same
        by_list.setdefault(frozenset(listed), []).append(segment)
    for group in by_list.values():
        if len(group) < 2 or len({tuple(sorted(levels[s].items())) for s in group}) < 2:
            continue
        differing = [c for c in columns if len({levels[s].get(c) for s in group}) > 1]
        for segment in group:
            traits = [
                config.trait(c, levels[segment][c])
                for c in differing
                if levels[segment].get(c, "mid") != "mid"
            ]
            if traits:
                actions[segment].append(_targeting(traits, config))


def name_segments(
    levels: pd.DataFrame,
    config: NamingConfig,
    name_columns: Sequence[str],
    sizes: Mapping[int, int],
    gender_shares: Mapping[int, Mapping[str, float]] | None = None,
    std_diffs: pd.DataFrame | None = None,
    available_columns: Sequence[str] | None = None,
) -> dict[int, SegmentName]:
    """Name every segment of a level table; names are unique within the segmentation.

    ``name_columns`` are the columns a descriptive name is built from (the
    clustering features); archetype rules and actions may use any column of ``levels``.
    ``std_diffs`` (segments x columns, standardized differences from the base)
    picks the columns that set each segment apart and lets two segments on the
    same levels be told apart as lower/higher. ``available_columns`` (default:
    the level table's) decide which actions the data supports.
    Nothing here depends on label ids (but for segments alike in every level, gap,
    gender and size, which are told apart by their id).
    """
    segment_levels = {
        int(s): {str(c): str(v) for c, v in row.items()} for s, row in levels.iterrows()
    }
    diffs = (
        {int(s): {str(c): float(v) for c, v in row.items()} for s, row in std_diffs.iterrows()}
        if std_diffs is not None
        else {}
    )
    available = [
        str(c) for c in (levels.columns if available_columns is None else available_columns)
    ]
    names: dict[int, str] = {}
    archetypes: dict[int, Archetype | None] = {}
    descriptions: dict[int, str] = {}
    chosen: dict[int, list[str]] = {}
    used: dict[int, set[str]] = {}
    total = sum(sizes.values()) or 1
    bulk = {
        s
        for s, lv in segment_levels.items()
        if s != NOISE_LABEL
        and sizes.get(s, 0) / total >= config.bulk_share
        and all(v == "mid" for v in lv.values())
    }
    for segment, lv in segment_levels.items():
        segment_diffs = diffs.get(segment)
        chosen[segment] = distinguishing_columns(lv, name_columns, config, segment_diffs)
        descriptions[segment] = describe_levels(lv, name_columns, config, segment_diffs)
        if segment == NOISE_LABEL:
            continue
        if segment in bulk:  # most customers, like all customers: never a target
            share = sizes.get(segment, 0) / total
            descriptions[segment] = (
                f"The bulk of customers ({share:.0%}): no column sets them apart from all customers"
            )
            names[segment], archetypes[segment], used[segment] = config.bulk_name, None, set()
            continue
        match = next((a for a in config.archetypes if a.matches(lv)), None)
        archetypes[segment] = match
        names[segment] = match.name if match else descriptions[segment]
        rule_keys = {column_key(c) for c in match.when} if match else set()
        used[segment] = (
            {c for c in lv if column_key(c) in rule_keys} if match else set(chosen[segment])
        )

    gender_major: dict[int, str | None] = {}
    for segment in names:
        shares = (gender_shares or {}).get(segment) or {}
        top = max(shares.items(), key=lambda kv: (kv[1], kv[0]), default=(None, 0.0))
        value = top[0] if top[1] >= config.gender_majority_share else None
        gender_major[segment] = (
            None if value is None else config.gender_words.get(str(value), f"mostly {value}")
        )
    vocab_order = [
        str(c) for k in config.columns for c in levels.columns if column_key(c) == column_key(k)
    ]
    candidates = list(dict.fromkeys([*vocab_order, *name_columns, *map(str, levels.columns)]))
    qualifiers = _Qualifiers(segment_levels, diffs, used, config)
    names = _unique_names(names, qualifiers, candidates, gender_major, sizes)

    actions: dict[int, list[str]] = {}
    for segment, lv in segment_levels.items():
        if segment == NOISE_LABEL:
            continue
        if segment in bulk:
            actions[segment] = [config.bulk_action]
            continue
        actions[segment] = _segment_actions(
            lv, archetypes[segment], chosen[segment], diffs.get(segment, {}), available, config
        )
    _distinct_actions(actions, segment_levels, candidates, config)

    result: dict[int, SegmentName] = {}
    for segment, lv in segment_levels.items():
        if segment == NOISE_LABEL:  # not a segment: a label and a count, no levels or actions
            result[segment] = SegmentName(segment, config.noise_name, None, "", {}, ())
            continue
        match = archetypes[segment]
        result[segment] = SegmentName(
            segment=segment,
            name=names[segment],
            archetype=match.key if match else None,
            description=descriptions[segment],
            levels=lv,
            actions=tuple(actions[segment]),
        )
    return result
