"""What each column of a customer table is for: id, numeric, categorical, date, label, left out.

With only ``data.path`` set, segexp works out each column's role from its
values and header; whatever the data config sets explicitly wins (a list for
``data.numeric``/``data.categorical``/``data.dates`` replaces that role's
inference, a name for ``data.id_column``/``data.label_column`` picks that
column, ``null`` means none). ``auto`` (the default) means "infer".

The rules, in order, for a column the config does not place:

* label: the canonical ``true_segment`` column (a known segment), when present;
* id: a column filled and unique in every row, text or whole numbers, whose
  header reads like an id (``CustomerID``, ``cust_no``, ``ID_Cliente``); else
  the first unique short text column (``C10001``) or increasing whole-number
  column (a row number);
* date: a date/time column, or text whose cells all parse as dates in one
  format (ISO ``2024-03-01``, US ``12/1/2010 8:26``, day-first ``01/12/2010``);
* categorical: text with few distinct values (at most 50, and at most half the
  rows), true/false, or whole-number codes: two distinct values (0/1, 1/2), or
  at most 12 under a header that names a code (region, channel, type, ...);
* numeric: every other number column, and text columns whose cells are numbers but
  for a few (more than half: the check then names the cells that are not);
* left out: empty or constant columns, free or near-unique text, and text with
  too many distinct values to be a category.

Then numbers from dates and birth years join the numeric columns (``derive_columns``,
``data.derive``): a date's days to the reference date (tenure, or recency for a
last-activity date), a birth date's or birth year's age.
"""

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
    "ISO8601",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%m/%d/%y",
    "%d/%m/%y",
)


@dataclass(frozen=True)
class ColumnRole:
    """One column's role, why, and whether the config set it (``by``: the config key)."""

    column: str
    role: str
    dtype: str
    reason: str
    by: str = "inferred"
    date_format: str | None = None


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
        ids = self.of("id")
        return ids[0] if ids else None

    @property
    def label_column(self) -> str | None:
        labels = self.of("label")
        return labels[0] if labels else None

    @property
    def numeric(self) -> list[str]:
        return self.of("numeric")

    @property
    def categorical(self) -> list[str]:
        return self.of("categorical")

    @property
    def dates(self) -> list[str]:
        return self.of("date")

    @property
    def excluded(self) -> list[str]:
        return self.of("excluded")

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per column (the run's schema artifact)."""
        return [
            {
                "column": c.column,
                "role": c.role,
                "dtype": c.dtype,
                "reason": c.reason,
                "set_by": c.by,
                **({"date_format": c.date_format} if c.date_format else {}),
            }
            for c in self.columns
        ]

    def params(self, limit: int = 250) -> dict[str, str]:
        """Short params for a run: each role's columns (cut at ``limit`` characters)."""
        out: dict[str, str] = {}
        for role in ROLES:
            names = self.of(role)
            text = ",".join(names) if names else "-"
            if len(text) > limit:
                shown = text[:limit].rsplit(",", 1)[0]
                text = f"{shown},... ({len(names)} columns)"
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
        hidden = self.columns[max_rows:]
        if hidden:
            counts = pd.Series([c.role for c in hidden]).value_counts()
            summary = ", ".join(f"{n} {role}" for role, n in counts.items())
            lines.append(f"  ... {len(hidden)} more columns: {summary}")
        lines.append(
            "  change a role with data.id_column=, data.numeric=[...], data.categorical=[...], "
            "data.dates=[...] (see README: Bring your own data)"
        )
        if any(c.reason.startswith(DERIVED) for c in self.columns):
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


def is_id_like(header: str) -> bool:
    """Headers that read like an identifier: CustomerID, cust_no, ID_Cliente, account_key
    (not amount_paid: the words count, not the letters)."""
    words = header_words(header)
    return bool(set(words) & _ID_WORDS) or (len(words) == 1 and words[0] in _ID_OWNERS)


def header_words(header: str) -> list[str]:
    """A header's words, lower-case: 'CustomerID' -> customer, id; 'ID_Cliente' -> id, cliente."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(header))
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [w for w in re.split(r"[^0-9a-z]+", spaced.lower()) if w]


def date_format_of(values: pd.Series, dayfirst: bool = False) -> str | None:
    """The one format every filled cell of a text column parses with (None: not dates)."""
    sample = values.head(4 * _DATE_SAMPLE).dropna().astype(str).str.strip().head(_DATE_SAMPLE)
    if sample.empty or not sample.str.match(_DATE_LIKE).all():
        return None
    filled = values.dropna().astype(str).str.strip()
    formats = list(DATE_FORMATS)
    if dayfirst:  # ambiguous 01/02/2010: the configured reading first
        formats.sort(key=lambda f: 0 if f.startswith("%d") else 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fmt in formats:
            parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
            if parsed.notna().all():
                if len(filled) > len(sample):
                    whole = pd.to_datetime(filled, format=fmt, errors="coerce")
                    if not whole.notna().all():
                        continue
                return fmt
    return None


def _mostly_numbers(filled: pd.Series) -> bool:
    """Text cells that are numbers but for a few (typos such as 'twenty' or '31?', or decimal
    commas): a number column with bad cells, whose check then names them."""
    sample = filled.head(_DATE_SAMPLE).astype(str).str.strip()
    numbers = pd.to_numeric(sample.str.replace(",", ".", regex=False), errors="coerce")
    return bool(numbers.notna().mean() > NUMBER_SHARE)


def strictly_increasing(values: pd.Series) -> bool:
    """Each cell greater than the one before: then every value is distinct, found in one
    pass (ids exported in key order) instead of hashing a million strings."""
    if len(values) < 2 or _kind(values) not in ("int", "text"):
        return False
    cells = pa.array(values, from_pandas=True)
    if not isinstance(cells, pa.ChunkedArray):
        cells = pa.chunked_array([cells])
    later, earlier = cells.slice(1), cells.slice(0, len(cells) - 1)
    try:
        return pc.all(pc.greater(later, earlier)).as_py() is True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _explicit(value: Any) -> bool:
    return not (isinstance(value, str) and value == AUTO)


def _names(value: Any) -> list[str] | None:
    """A role list from the config: None for auto (infer), else the names."""
    return names_of(value) if _explicit(value) else None


def _infer_one(
    column: str,
    values: pd.Series,
    n_rows: int,
    dayfirst: bool,
    taken_id: bool,
    allow_id: bool,
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
    unique_and_full = n_filled == n_rows and n_distinct == n_rows
    id_candidate = allow_id and not taken_id and kind in ("int", "text") and is_id_like(column)
    if id_candidate and unique_and_full:
        return ColumnRole(column, "id", kind, UNIQUE_IN_EVERY_ROW)
    if id_candidate and n_distinct > NEAR_UNIQUE * n_filled:  # the id check names repeats
        return ColumnRole(column, "id", kind, "named like an id, mostly unique")
    if kind == "date":
        return ColumnRole(column, "date", kind, "dates")
    if kind == "bool":
        return ColumnRole(column, "categorical", kind, "true/false")
    if kind in ("int", "float"):
        if kind == "int" and n_distinct == 2:
            return ColumnRole(column, "categorical", kind, "two codes")
        code_name = _CODE_WORDS.search(normalize_header(column))
        if kind == "int" and n_distinct <= MAX_CODES and code_name:
            return ColumnRole(column, "categorical", kind, f"{n_distinct} codes, named like a code")
        return ColumnRole(column, "numeric", kind, "numbers")
    sample = values.head(4 * _DATE_SAMPLE).dropna()
    if _mostly_numbers(sample):
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
        if role.by != "inferred" or role.role not in ("excluded", "numeric"):
            continue
        values = frame[role.column]
        if values.isna().any() or values.nunique() != n_rows or n_rows < 2:
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
    explicit: dict[str, tuple[str, str]] = {}  # column -> (role, config key)
    id_setting = data_cfg.get("id_column", AUTO)
    label_setting = data_cfg.get("label_column", AUTO)
    if _explicit(id_setting) and id_setting:
        explicit[str(id_setting)] = ("id", "data.id_column")
    if _explicit(label_setting) and label_setting:
        explicit[str(label_setting)] = ("label", "data.label_column")
    lists = {
        "numeric": _names(data_cfg.get("numeric", AUTO)),
        "categorical": _names(data_cfg.get("categorical", AUTO)),
        "date": _names(data_cfg.get("dates", AUTO)),
    }
    for role, names in lists.items():
        for name in names or []:
            key = "data.dates" if role == "date" else f"data.{role}"
            explicit.setdefault(name, (role, key))
    dayfirst = bool(data_cfg.get("dayfirst", False))
    allow_id = not _explicit(id_setting)
    roles: list[ColumnRole] = []
    taken_id = any(role == "id" for role, _ in explicit.values())
    for column in map(str, frame.columns):
        values = frame[column]
        if column in explicit:
            role, key = explicit[column]
            roles.append(ColumnRole(column, role, _kind(values), "", by=key))
            continue
        if not _explicit(label_setting) and column == LABEL_CANONICAL:
            roles.append(ColumnRole(column, "label", _kind(values), "known segment"))
            continue
        inferred = _infer_one(column, values, len(frame), dayfirst, taken_id, allow_id)
        taken_id = taken_id or inferred.role == "id"
        if lists.get(inferred.role) is not None:  # the config lists this role itself
            key = "data.dates" if inferred.role == "date" else f"data.{inferred.role}"
            inferred = replace(inferred, role="excluded", reason=f"not in {key}")
        roles.append(inferred)
    if allow_id and not taken_id:
        roles = _fallback_id(frame, roles)
    return Schema(tuple(roles))


# --- numbers from dates and birth years (data.derive) ----------------------------------------

DERIVED = "derived:"  # how a derived column's reason starts
_BIRTH_WORDS = {"birth", "born", "dob", "yob", "birthday", "birthdate"}
_RECENT_WORDS = {"last", "latest", "recent", "previous"}
_DAYS_PER_YEAR = 365.25
_YEAR_SHARE = 0.95  # share of a birth-year column's cells that must be plausible years


def _derived_name(preferred: str, source: str, taken: set[str]) -> str | None:
    for name in (preferred, f"{preferred}_from_{source}"):
        if name not in taken:
            return name
    return None


def _birth_years(values: pd.Series, reference_year: int) -> bool:
    filled = pd.to_numeric(values, errors="coerce").dropna()
    plausible = filled.between(1850, reference_year) & (filled % 1 == 0)
    return len(filled) > 0 and bool(plausible.mean() >= _YEAR_SHARE)


def reference_date(frame: pd.DataFrame, schema: Schema, setting: Any) -> pd.Timestamp:
    """The day derived ages and day counts are measured to: ``data.derive.reference_date``,
    else the latest date in the table's date columns, else today."""
    if setting not in (None, ""):
        try:
            return pd.Timestamp(str(setting)).normalize()
        except ValueError:
            raise ConfigError(
                f"data.derive.reference_date: a date such as 2024-12-31, or null (the latest "
                f"date in the table); got {setting!r}"
            ) from None
    latest = [
        frame[c].max() for c in schema.dates if pd.api.types.is_datetime64_any_dtype(frame[c])
    ]
    latest = [d for d in latest if pd.notna(d)]
    return max(latest).normalize() if latest else pd.Timestamp.today().normalize()


def derive_columns(
    frame: pd.DataFrame, schema: Schema, derive: Mapping[str, Any] | None, numeric_listed: bool
) -> tuple[pd.DataFrame, Schema, str | None]:
    """Numbers from dates and birth years, as columns of the table and the schema.

    A date column yields a day count to the reference date: ``recency`` when its header
    says last/latest/recent, an age in years for a birth date, else ``tenure`` (a
    customer-since date). A numeric column named like a birth year (``Year_Birth``) whose
    cells are years yields ``age``, and is left out itself (the same information twice would
    weigh double). ``data.derive.days_since`` / ``data.derive.age`` (true by default) switch
    each off. The derived columns are numeric, so ``features=all_numeric`` uses them, unless
    ``data.numeric`` lists the columns itself. Returns the frame, the schema and the
    reference date (None when nothing was derived).
    """
    settings = dict(derive or {})
    days_on, age_on = bool(settings.get("days_since", True)), bool(settings.get("age", True))
    if not (days_on or age_on):
        return frame, schema, None
    reference = reference_date(frame, schema, settings.get("reference_date"))
    day = f"{reference:%Y-%m-%d}"
    taken = set(map(str, frame.columns))
    new_columns: dict[str, pd.Series] = {}
    roles: list[ColumnRole] = []
    for role in schema.columns:
        column, words = role.column, set(header_words(role.column))
        derived: tuple[str, pd.Series, str] | None = None
        if role.role == "date" and pd.api.types.is_datetime64_any_dtype(frame[column]):
            days = (reference - frame[column]).dt.days
            if words & _BIRTH_WORDS and age_on:
                age = np.floor(days / _DAYS_PER_YEAR)
                derived = ("age", age, f"years from {column} to {day}")
            elif days_on and not words & _BIRTH_WORDS:
                kind = "recency" if words & _RECENT_WORDS else "tenure"
                derived = (kind, days, f"days from {column} to {day}")
        elif (
            role.role == "numeric"
            and age_on
            and words & _BIRTH_WORDS
            and _birth_years(frame[column], reference.year)
        ):
            age = reference.year - pd.to_numeric(frame[column], errors="coerce")
            derived = ("age", age, f"years from {column} to {reference.year}")
            if not numeric_listed:
                role = replace(role, role="excluded", reason="birth year: age derived from it")
        roles.append(role)
        name = _derived_name(derived[0], column, taken) if derived else None
        if derived is None or name is None:
            continue
        taken.add(name)
        values = derived[1]
        new_columns[name] = values.astype("int64") if not values.hasnans else values.astype(float)
        kept = "numeric" if not numeric_listed else "excluded"
        reason = f"{DERIVED} {derived[2]}" + ("" if kept == "numeric" else "; not in data.numeric")
        roles.append(ColumnRole(name, kept, _kind(new_columns[name]), reason))
    if not new_columns:
        return frame, schema, None
    frame = frame.assign(**new_columns)
    return frame, Schema(tuple(roles)), day
