"""Each column's role (id, numeric, categorical, date, label, excluded): the config's, else
inferred (rules: the docs' data page); then dates and birth years give numbers."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segexp.data.messages import names_of, normalize_header, plain
from segexp.errors import ConfigError

ROLES = ("id", "numeric", "categorical", "date", "label", "excluded")
AUTO = "auto"
UNIQUE_IN_EVERY_ROW = "unique in every row, named like an id"
LABEL_CANONICAL = "true_segment"
MAX_CATEGORIES = 50
MAX_CODES = 12
NEAR_UNIQUE = 0.5  # an id-named column more unique than this is the id; its repeats are errors
NUMBER_SHARE = 0.5  # share of number cells above which a text column is numeric
_DATE_SAMPLE = 2000
_ID_WORDS = {"id", "no", "nr", "num", "number", "key", "identifier", "uuid", "guid"}
_ID_OWNERS = {"cust", "customer", "client", "cliente", "member", "account", "user", "kunde"}
_CODE_WORDS = re.compile(
    r"(region|channel|type|code|category|class|group|segment|status|flag|gender|sex|"
    r"education|marital|level|tier|^is|^has)"
)
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?")
DATE_FORMATS = (
    *("ISO8601", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%d/%m/%Y %H:%M"),
    *("%d/%m/%Y %H:%M:%S", "%d/%m/%Y", "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%Y", "%Y/%m/%d"),
    *("%m/%d/%y", "%d/%m/%y"),
)
_BIRTH_WORDS = {"birth", "born", "dob", "yob", "birthday", "birthdate"}
_RECENT_WORDS = {"last", "latest", "recent", "previous"}


@dataclass(frozen=True)
class ColumnRole:
    """One column's role, why, and who set it (``by``); a derived column's source, unit
    (days, years, birth_year) and reference day, so scoring derives it again the same way."""

    column: str
    role: str
    dtype: str
    reason: str
    by: str = "inferred"
    date_format: str | None = None
    derived_from: str | None = None
    unit: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Schema:
    """The role of every column of a table, in file order."""

    columns: tuple[ColumnRole, ...]

    def of(self, role: str) -> list[str]:
        return [c.column for c in self.columns if c.role == role]

    def role(self, column: str) -> ColumnRole | None:
        return next((c for c in self.columns if c.column == column), None)

    @property
    def id_column(self) -> str | None:
        return next(iter(self.of("id")), None)

    @property
    def label_column(self) -> str | None:
        return next(iter(self.of("label")), None)

    @property
    def numeric(self) -> list[str]:
        return self.of("numeric")

    @property
    def categorical(self) -> list[str]:
        return self.of("categorical")

    @property
    def dates(self) -> list[str]:
        return self.of("date")

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per column (the run's schema artifact)."""
        return [
            {"column": c.column, "role": c.role, "dtype": c.dtype, "reason": c.reason}
            | {"set_by": c.by}
            | ({"date_format": c.date_format} if c.date_format else {})
            for c in self.columns
        ]

    def params(self, limit: int = 250) -> dict[str, str]:
        """Short params for a run: each role's columns (cut at ``limit`` characters)."""
        out: dict[str, str] = {}
        for role in ROLES:
            names = self.of(role)
            text = ",".join(names) if names else "-"
            if len(text) > limit:
                text = f"{text[:limit].rsplit(',', 1)[0]},... ({len(names)} columns)"
            out[f"schema.{role}"] = text
        return out

    def table(self, source: str, max_rows: int = 30) -> str:
        """The schema as a short terminal table: column, role, type, why."""
        width = min(max((len(c.column) for c in self.columns), default=6), 32)
        lines = [f"Columns of {source} ({len(self.columns)}):"]
        lines.append(f"  {'column':<{width}}  {'role':<11}  {'type':<8}  why")
        for c in self.columns[:max_rows]:
            why = c.reason if c.by == "inferred" else f"set by {c.by}"
            name = c.column if len(c.column) <= width else c.column[: width - 1] + "~"
            lines.append(f"  {name:<{width}}  {c.role:<11}  {c.dtype:<8}  {why}")
        hidden = pd.Series([c.role for c in self.columns[max_rows:]]).value_counts()
        if len(hidden):
            summary = ", ".join(f"{n} {role}" for role, n in hidden.items())
            lines.append(f"  ... {hidden.sum()} more columns: {summary}")
        lines.append(
            "  change a role with data.id_column=, data.numeric=[...], data.categorical=[...], "
            "data.dates=[...] (see README: Bring your own data)"
        )
        if any(c.derived_from for c in self.columns):
            lines.append(
                "  derived columns off: data.derive.days_since=false, data.derive.age=false"
            )
        return "\n".join(lines)


def _kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    if pd.api.types.is_integer_dtype(values):
        return "int"
    if pd.api.types.is_float_dtype(values):
        filled = values.dropna()
        return "int" if len(filled) and bool((filled % 1 == 0).all()) else "float"
    return "text"


def header_words(header: str) -> list[str]:
    """A header's words, lower-case: 'CustomerID' -> customer, id; 'ID_Cliente' -> id, cliente."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(header))
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [w for w in re.split(r"[^0-9a-z]+", spaced.lower()) if w]


def is_id_like(header: str) -> bool:
    """CustomerID, cust_no, ID_Cliente, account_key (not amount_paid: words count, not letters)."""
    words = header_words(header)
    return bool(set(words) & _ID_WORDS) or (len(words) == 1 and words[0] in _ID_OWNERS)


def date_format_of(values: pd.Series, dayfirst: bool = False) -> str | None:
    """The one format every filled cell of a text column parses with (None: not dates)."""
    sample = values.head(4 * _DATE_SAMPLE).dropna().astype(str).str.strip().head(_DATE_SAMPLE)
    if sample.empty or not sample.str.match(_DATE_LIKE).all():
        return None
    filled = values.dropna().astype(str).str.strip()
    # ambiguous 01/02/2010: the configured reading first (a stable sort)
    formats = sorted(DATE_FORMATS, key=lambda f: dayfirst and not f.startswith("%d"))
    with warnings.catch_warnings(action="ignore"):
        for fmt in formats:
            if pd.to_datetime(sample, format=fmt, errors="coerce").notna().all() and (
                len(filled) == len(sample)
                or pd.to_datetime(filled, format=fmt, errors="coerce").notna().all()
            ):
                return fmt
    return None


def strictly_increasing(values: pd.Series) -> bool:
    """Each cell greater than the one before: every value distinct, found in one pass (ids in
    key order) instead of hashing a million strings."""
    if len(values) < 2 or _kind(values) not in ("int", "text"):
        return False
    cells = pa.array(values, from_pandas=True)
    if not isinstance(cells, pa.ChunkedArray):
        cells = pa.chunked_array([cells])
    try:
        return pc.all(pc.greater(cells.slice(1), cells.slice(0, len(cells) - 1))).as_py() is True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


_KEYS = {"id": "id_column", "label": "label_column", "numeric": "numeric"}
_KEYS |= {"categorical": "categorical", "date": "dates"}


def _infer_one(
    column: str, values: pd.Series, n_rows: int, dayfirst: bool, may_be_id: bool
) -> ColumnRole:
    kind = _kind(values)
    n_filled = int(values.count())
    if n_filled == 0:
        return ColumnRole(column, "excluded", kind, "empty in every row")
    full = n_filled == n_rows
    n_distinct = n_rows if full and strictly_increasing(values) else int(values.nunique())
    if n_distinct == 1 and n_rows > 1:
        first = values.loc[values.first_valid_index()]
        return ColumnRole(column, "excluded", kind, f"constant ({plain(first)!r})")
    if may_be_id and kind in ("int", "text") and is_id_like(column):
        if full and n_distinct == n_rows:
            return ColumnRole(column, "id", kind, UNIQUE_IN_EVERY_ROW)
        if n_distinct > NEAR_UNIQUE * n_filled:  # the id check names the repeats
            return ColumnRole(column, "id", kind, "named like an id, mostly unique")
    if kind == "date":
        return ColumnRole(column, "date", kind, "dates")
    if kind == "bool":
        return ColumnRole(column, "categorical", kind, "true/false")
    if kind in ("int", "float"):
        if kind == "int" and n_distinct == 2:
            return ColumnRole(column, "categorical", kind, "two codes")
        code_like = n_distinct <= MAX_CODES and _CODE_WORDS.search(normalize_header(column))
        if kind == "int" and code_like:
            return ColumnRole(column, "categorical", kind, f"{n_distinct} codes, named like a code")
        return ColumnRole(column, "numeric", kind, "numbers")
    sample = values.head(4 * _DATE_SAMPLE).dropna()
    text = sample.head(_DATE_SAMPLE).astype(str).str.strip()
    numbers = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
    if numbers.notna().mean() > NUMBER_SHARE:  # typos ('twenty', '31?'): the check names them
        return ColumnRole(column, "numeric", kind, "numbers, with some text cells")
    fmt = date_format_of(values, dayfirst)
    if fmt is not None:
        return ColumnRole(column, "date", kind, f"dates ({fmt})", date_format=fmt)
    if n_distinct <= MAX_CATEGORIES and n_distinct <= 0.5 * n_filled:
        return ColumnRole(column, "categorical", kind, f"{n_distinct} values")
    text = sample.astype(str)
    if text.str.len().mean() > 30 or text.str.contains(" ").mean() > 0.5:
        return ColumnRole(column, "excluded", kind, "free text")
    if n_distinct > 0.9 * n_filled:
        return ColumnRole(column, "excluded", kind, "near-unique text")
    return ColumnRole(column, "excluded", kind, f"text with {n_distinct} distinct values")


def _fallback_id(frame: pd.DataFrame, roles: list[ColumnRole]) -> list[ColumnRole]:
    """No id-named column: the first unique short text column, or an increasing count."""
    n_rows = len(frame)
    for position, role in enumerate(roles):
        if role.by != "inferred" or role.role not in ("excluded", "numeric") or n_rows < 2:
            continue
        values = frame[role.column]
        if values.isna().any() or values.nunique() != n_rows:
            continue
        if role.dtype == "text":
            text = values.astype(str)
            if text.str.len().max() <= 40 and not text.str.contains(" ").any():
                roles[position] = replace(role, role="id", reason="unique short text in every row")
                return roles
        elif role.dtype == "int" and values.is_monotonic_increasing:
            roles[position] = replace(role, role="id", reason="increasing count, unique")
            return roles
    return roles


def infer_schema(frame: pd.DataFrame, data_cfg: Mapping[str, Any]) -> Schema:
    """Every column's role: the config's explicit choices, inference for the rest."""
    settings = {role: data_cfg.get(key, AUTO) for role, key in _KEYS.items()}
    lists = {role: None if v == AUTO else names_of(v) for role, v in settings.items()}
    explicit: dict[str, tuple[str, str]] = {}  # column -> (role, config key)
    for role, names in lists.items():
        for name in names or []:
            explicit.setdefault(name, (role, f"data.{_KEYS[role]}"))
    dayfirst = bool(data_cfg.get("dayfirst", False))
    allow_id, taken_id = lists["id"] is None, bool(lists["id"])
    roles: list[ColumnRole] = []
    for column in map(str, frame.columns):
        values = frame[column]
        if column in explicit:
            role, key = explicit[column]
            roles.append(ColumnRole(column, role, _kind(values), "", by=key))
        elif lists["label"] is None and column == LABEL_CANONICAL:
            roles.append(ColumnRole(column, "label", _kind(values), "known segment"))
        else:
            inferred = _infer_one(column, values, len(frame), dayfirst, allow_id and not taken_id)
            taken_id = taken_id or inferred.role == "id"
            if lists.get(inferred.role) is not None:  # the config lists this role itself
                reason = f"not in data.{_KEYS[inferred.role]}"
                inferred = replace(inferred, role="excluded", reason=reason)
            roles.append(inferred)
    if allow_id and not taken_id:
        roles = _fallback_id(frame, roles)
    return Schema(tuple(roles))


def reference_date(frame: pd.DataFrame, schema: Schema, setting: Any) -> pd.Timestamp:
    """The day derived numbers are measured to: ``data.derive.reference_date``, else the
    latest date in the table's date columns, else today."""
    if setting not in (None, ""):
        try:
            return pd.Timestamp(str(setting)).normalize()
        except ValueError:
            raise ConfigError(
                f"data.derive.reference_date: a date such as 2024-12-31, or null (the latest "
                f"date in the table); got {setting!r}"
            ) from None
    dated = [c for c in schema.dates if pd.api.types.is_datetime64_any_dtype(frame[c])]
    latest = [d for d in (frame[c].max() for c in dated) if pd.notna(d)]
    return max(latest).normalize() if latest else pd.Timestamp.today().normalize()


def derive_columns(
    frame: pd.DataFrame, schema: Schema, derive: Mapping[str, Any] | None, numeric_listed: bool
) -> tuple[pd.DataFrame, Schema, str | None]:
    """Days from a date to the reference date (``recency`` for a last-activity date, else
    ``tenure``) and ``age`` from a birth date or year (then left out), as numeric columns
    (excluded when ``data.numeric`` lists its own); returns the reference day or None."""
    settings = dict(derive or {})
    days_on, age_on = bool(settings.get("days_since", True)), bool(settings.get("age", True))
    if not (days_on or age_on):
        return frame, schema, None
    reference = reference_date(frame, schema, settings.get("reference_date"))
    day = f"{reference:%Y-%m-%d}"
    new: dict[str, pd.Series] = {}
    roles: list[ColumnRole] = []
    for role in schema.columns:
        column, words = role.column, set(header_words(role.column))
        birth, how = bool(words & _BIRTH_WORDS), None  # how: (name, unit, values)
        if role.role == "date" and pd.api.types.is_datetime64_any_dtype(frame[column]):
            days = (reference - frame[column]).dt.days
            if birth and age_on:
                how = ("age", "years", np.floor(days / 365.25))
            elif days_on and not birth:
                how = ("recency" if words & _RECENT_WORDS else "tenure", "days", days)
        elif role.role == "numeric" and age_on and birth:
            years = pd.to_numeric(frame[column], errors="coerce")
            filled = years.dropna()
            plausible = filled.between(1850, reference.year) & (filled % 1 == 0)
            if len(filled) and plausible.mean() >= 0.95:  # a birth year column
                how = ("age", "birth_year", reference.year - years)
                if not numeric_listed:
                    role = replace(role, role="excluded", reason="birth year: age derived from it")
        roles.append(role)
        taken = {*map(str, frame.columns), *new}
        names = [n for n in (how[0], f"{how[0]}_from_{column}") if n not in taken] if how else []
        if not names or how is None:
            continue
        name, unit, values = names[0], how[1], how[2]
        new[name] = values.astype(float) if values.hasnans else values.astype("int64")
        to = str(reference.year) if unit == "birth_year" else day
        reason = f"derived: {'days' if unit == 'days' else 'years'} from {column} to {to}"
        role_of = "excluded" if numeric_listed else "numeric"
        reason += "; not in data.numeric" if numeric_listed else ""
        kind = _kind(new[name])
        roles.append(ColumnRole(name, role_of, kind, reason, "inferred", None, column, unit, to))
    if not new:
        return frame, schema, None
    return frame.assign(**new), Schema(tuple(roles)), day


def derivations(schema: Schema) -> dict[str, dict[str, str | None]]:
    """How ``derive_columns`` made each derived column: {name: {from, unit, reference, format}}."""
    return {
        c.column: {
            "from": c.derived_from,
            "unit": c.unit,
            "reference": c.reference,
            "format": getattr(schema.role(c.derived_from), "date_format", None),
        }
        for c in schema.columns
        if c.derived_from
    }


def derive_again(frame: pd.DataFrame, derived: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The derived columns ``frame`` lacks, from their sources as training derived them (its
    reference date); a cell that does not parse is left blank (a row problem, not an error)."""
    new: dict[str, pd.Series] = {}
    for name, how in derived.items():
        source = str(how["from"])
        if name in frame.columns or source not in frame.columns:
            continue
        reference = str(how["reference"])
        if how["unit"] == "birth_year":
            new[name] = int(reference[:4]) - pd.to_numeric(frame[source], errors="coerce")
            continue
        dates = pd.to_datetime(frame[source], errors="coerce", format=how.get("format") or None)
        days = (pd.Timestamp(reference) - dates).dt.days
        new[name] = np.floor(days / 365.25) if how["unit"] == "years" else days
    return frame.assign(**new) if new else frame
