"""``segexp-sample``: write a built-in sample as a CSV file, to try ``data.path`` with a file.

segexp-sample transactions --out transactions.csv    # an invoice-line log
segexp-sample mall --out customers.csv               # mall customers
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="segexp-sample", description="Write a built-in sample table as a CSV file."
    )
    parser.add_argument("kind", choices=["mall", "transactions"], help="which sample")
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--customers", type=int, default=None, help="number of customers")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    args = parser.parse_args(argv)
    from segexp.data.samples import generate_mall_sample, generate_transactions

    if args.kind == "mall":
        n = 200 if args.customers is None else args.customers
        minimum, make, what = 5, generate_mall_sample, "customers"
    else:
        n = 300 if args.customers is None else args.customers
        minimum, make, what = 1, generate_transactions, "transaction lines"
    if n < minimum:
        print(f"segexp: error: --customers must be at least {minimum}; got {n}", file=sys.stderr)
        return 2
    table = make(n_customers=n, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"wrote {len(table)} {what} of {n} customers to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
