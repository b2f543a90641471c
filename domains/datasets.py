"""Small helpers shared by the domains' real-data adapters (plain Python).

Adapters read public data sets in their published formats and return
:class:`domains.base.SampleData` in the REST API's shapes, so a loaded data
set goes through the same validation as the API. Nothing here is copied into
the repository: the command gets the path to the files.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


class DatasetError(Exception):
    """The files are missing or not in the expected format."""


def dataset_file(path: str | Path, name: str) -> Path:
    """``path`` itself if it is the file, else ``path/name`` (searched one level down too)."""
    p = Path(path)
    if p.is_file():
        return p
    if (p / name).is_file():
        return p / name
    found = sorted(p.glob(f"*/{name}")) if p.is_dir() else []
    if found:
        return found[0]
    raise DatasetError(f"{name} not found under {p}")


def optional_file(path: str | Path, name: str) -> Path | None:
    try:
        return dataset_file(Path(path) if Path(path).is_dir() else Path(path).parent, name)
    except DatasetError:
        return None


def csv_rows(
    path: Path, *, delimiter: str = ",", encoding: str = "utf-8", header: bool = True
) -> Iterator[dict[str, str]] | Iterator[list[str]]:
    """Rows as dicts (with a header) or lists; '?' and '' stay strings for the caller."""
    with path.open(newline="", encoding=encoding, errors="replace") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter) if header else csv.reader(fh, delimiter=delimiter)
        yield from reader


def utc_iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).replace(microsecond=0).isoformat()


def from_unix(seconds: str | int | float) -> str:
    return utc_iso(datetime.fromtimestamp(int(float(seconds)), tz=UTC))


def number(value: str | None) -> float | None:
    """A float, or None for '?', '' and other missing markers."""
    if value is None:
        return None
    value = value.strip()
    if value in ("", "?", "NA", "nan"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def whole_users(events: list[dict], limit: int | None) -> list[dict]:
    """Events of the first users (in order of first appearance) until ``limit`` is reached.

    A slice keeps complete histories: the user who crosses the limit is kept whole.
    """
    if limit is None:
        return events
    counts: dict[str, int] = {}
    for e in events:
        counts[e["user_id"]] = counts.get(e["user_id"], 0) + 1
    keep: set[str] = set()
    total = 0
    for user, n in counts.items():
        if total >= limit:
            break
        keep.add(user)
        total += n
    return [e for e in events if e["user_id"] in keep]
