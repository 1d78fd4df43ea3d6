"""``segexp-sample``: write a built-in sample as a file, to try ``data.path`` with a file.

segexp-sample transactions --out transactions.csv    # an invoice-line log
segexp-sample mall --out customers.parquet           # mall customers

The format is the name's (.csv, .tsv, .parquet, .pq); an existing file is refused unless
``--overwrite`` (and only a regular file is ever replaced), as for every segexp output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="segexp-sample", description="Write a built-in sample table as a file."
    )
    parser.add_argument("kind", choices=["mall", "transactions"], help="which sample")
    parser.add_argument(
        "--out", required=True, help="file to write: .csv, .tsv, .parquet or .pq (its format)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.add_argument("--customers", type=int, default=None, help="number of customers")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    args = parser.parse_args(argv)
    # after argparse: --help answers without importing pandas
    from segexp.data.export import write_table
    from segexp.data.samples import generate_mall_sample, generate_transactions
    from segexp.errors import ConfigError
    from segexp.tools.outputs import TABLE_FORMATS, check_output, staged, table_format

    if args.kind == "mall":
        n = 200 if args.customers is None else args.customers
        minimum, make, what = 5, generate_mall_sample, "customers"
    else:
        n = 300 if args.customers is None else args.customers
        minimum, make, what = 1, generate_transactions, "transaction lines"
    try:
        if n < minimum:
            raise ConfigError(f"--customers must be at least {minimum}; got {n}")
        out = check_output(args.out, "--out", args.overwrite, list(TABLE_FORMATS), "--overwrite")
        table = make(n_customers=n, seed=args.seed)
        with staged(out) as temporary:
            write_table(table, temporary, table_format(out, "--out"))
    except ConfigError as exc:
        print(f"segexp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {len(table)} {what} of {n} customers to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
