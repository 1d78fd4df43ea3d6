"""``segexp-sample``: write a built-in sample as a file, to try ``data.path`` with a file
(``key=value`` like every tool; ``--out FILE`` and ``--overwrite`` stay as aliases)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from segexp.errors import ConfigError
from segexp.tools.outputs import TABLE_FORMATS, check_output, staged, table_format

HELP = """segexp-sample: write a built-in sample table as a file, to try data.path=FILE.
Examples:
  segexp-sample mall out=customers.csv             200 mall customers (CSV)
  segexp-sample transactions out=log.parquet       an invoice-line log of 300 customers
  segexp-sample mall out=big.csv customers=100000 overwrite=true

Keys (key=value on the command line; the default shown):
  kind=null         mall | transactions (also the first word: segexp-sample mall ...)
  out=null          the file to write: .csv, .tsv, .parquet or .pq (its format); --out FILE too
  customers=null    number of customers (null: 200 mall, 300 transactions)
  seed=7            random seed
  overwrite=false   true: replace an existing regular file (--overwrite too)"""
KEYS = {"kind": None, "out": None, "customers": None, "seed": "7", "overwrite": "false"}
KINDS = ("mall", "transactions")


def parse_args(args: Sequence[str]) -> dict[str, str | None]:
    """``key=value`` words (and the aliases) -> values; ConfigError names what is wrong."""
    values = dict(KEYS)
    words = list(args)
    while words:
        word = words.pop(0)
        if word == "--overwrite":
            word = "overwrite=true"
        elif word == "--out" and words:
            word = f"out={words.pop(0)}"
        elif word.startswith("--out="):
            word = word[2:]
        elif "=" not in word and word in KINDS:
            word = f"kind={word}"
        key, equals, value = word.partition("=")
        if not equals:
            raise ConfigError(f"{word}: not key=value; write e.g. segexp-sample mall out=FILE")
        if key not in KEYS:
            raise ConfigError(f"{key}: no such key; available: {', '.join(KEYS)}")
        values[key] = value
    return values


def _whole(values: dict[str, str | None], key: str, least: int) -> int | None:
    text = values[key]
    if text in (None, "null"):
        return None
    try:
        number = int(str(text))
    except ValueError:
        number = least - 1
    if number < least:
        raise ConfigError(f"{key}: a whole number >= {least}; got {text!r}")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("--help", "-h", "help") for a in args):
        print(HELP)
        return 0
    # messages name what the user wrote: --out / --overwrite, or out= / overwrite=true
    dashed = "--out" in " ".join(args)
    out_key, overwrite_key = ("--out", "--overwrite") if dashed else ("out", "overwrite=true")
    try:
        values = parse_args(args)
        if values["kind"] not in KINDS:
            got = f"; got {values['kind']!r}" if values["kind"] else " is required"
            raise ConfigError(f"kind: mall or transactions{got} (segexp-sample mall out=FILE)")
        if not values["out"]:
            raise ConfigError("out: the file to write is required, e.g. out=customers.csv")
        if values["overwrite"] not in ("true", "false"):
            raise ConfigError(f"overwrite: true or false; got {values['overwrite']!r}")
        mall = values["kind"] == "mall"
        n = _whole(values, "customers", 5 if mall else 1) or (200 if mall else 300)
        seed = _whole(values, "seed", 0) or 0
        overwrite = values["overwrite"] == "true"
        out = check_output(
            str(values["out"]), out_key, overwrite, list(TABLE_FORMATS), overwrite_key
        )
        # measured start-up cost: pandas loads only once the command line is checked
        from segexp.data import export, samples

        generate = samples.generate_mall_sample if mall else samples.generate_transactions
        table = generate(n_customers=n, seed=seed)
        with staged(out) as temporary:
            export.write_table(table, temporary, table_format(out, out_key))
    except ConfigError as exc:
        print(f"segexp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    what = "customers" if mall else "transaction lines"
    print(f"wrote {len(table)} {what} of {n} customers to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
