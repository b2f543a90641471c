"""Convert public data set formats into the bench CSV (`user_id,item_id,timestamp[,event_type]`).

    python -m mlcore.convert --format movielens  ml-100k/u.data          out.csv.gz
    python -m mlcore.convert --format sequences  amazon-sports/Sports_and_Outdoors.txt out.csv.gz
    python -m mlcore.convert --format sasrec     amazon-videogames-sasrec/Video.txt   out.csv.gz
    python -m mlcore.convert --format taobao     taobao-userbehavior/user-sample-10k/UserBehavior.csv out.csv.gz

Formats without timestamps (one-line-per-user sequences, SASRec `user item`
lines) get the event's position in the user's history as its timestamp.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("movielens", "sequences", "sasrec", "taobao")


def read_movielens(path: str | Path) -> pd.DataFrame:
    """MovieLens u.data: tab-separated user, item, rating, unix time."""
    df = pd.read_csv(
        path, sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"], dtype=str
    )
    df["timestamp"] = df["timestamp"].astype(np.int64)
    return df[["user_id", "item_id", "timestamp"]]


def read_sequences(path: str | Path) -> pd.DataFrame:
    """One line per user: `user item item ...`, oldest first; the position is the timestamp."""
    users, items, positions = [], [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) < 2:
                continue
            users.extend([parts[0]] * (len(parts) - 1))
            items.extend(parts[1:])
            positions.extend(range(len(parts) - 1))
    return pd.DataFrame(
        {"user_id": users, "item_id": items, "timestamp": np.asarray(positions, dtype=np.int64)}
    )


def read_sasrec(path: str | Path) -> pd.DataFrame:
    """`user item` per line, grouped by user, oldest first; the position within the user is the timestamp."""
    df = pd.read_csv(path, sep=r"\s+", header=None, names=["user_id", "item_id"], dtype=str, engine="c")
    df["timestamp"] = df.groupby("user_id", sort=False).cumcount().astype(np.int64)
    return df


def read_taobao(path: str | Path) -> pd.DataFrame:
    """Taobao UserBehavior CSV: user, item, category, behaviour (pv/cart/fav/buy), unix time."""
    df = pd.read_csv(
        path, header=None, names=["user_id", "item_id", "category_id", "event_type", "timestamp"], dtype=str
    )
    df["timestamp"] = df["timestamp"].astype(np.int64)
    return df[["user_id", "item_id", "timestamp", "event_type"]]


READERS = {
    "movielens": read_movielens,
    "sequences": read_sequences,
    "sasrec": read_sasrec,
    "taobao": read_taobao,
}


def interactions_read(path: str | Path) -> pd.DataFrame:
    """Read a bench CSV (optionally .gz) with header user_id,item_id,timestamp[,event_type]."""
    df = pd.read_csv(path, dtype={"user_id": str, "item_id": str, "event_type": str})
    missing = {"user_id", "item_id", "timestamp"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return df


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlcore.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("input")
    parser.add_argument("output", help="CSV path; .gz compresses")
    args = parser.parse_args(argv)
    df = READERS[args.format](args.input)
    df.to_csv(args.output, index=False)
    print(
        f"wrote {len(df)} events of {df['user_id'].nunique()} users, {df['item_id'].nunique()} items to {args.output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
