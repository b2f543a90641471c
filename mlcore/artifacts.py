"""Versioned model artifacts: save and load (NumPy + hnswlib only, never TensorFlow).

Layout of an artifact directory::

    manifest.json        format_version, algorithm, config, metrics, event_types, shapes, index kind
    item_ids.json        list of external item ids; row i of every item array
    item_vectors.npy     float32 (n_items, d), memory-mapped on load
    item_popularity.npy  float32 (n_items,) training-event counts (recency-weighted when configured)
    encoder.npz          SequenceEncoder weights (neural algorithms only)
    index.hnsw(.json)    HNSW graph, when the catalog is large enough

No per-user data is stored (erasure): user embeddings go back to the caller in
``TrainResult`` and live in the database. ``manifest.json`` is written last, so
a half-written directory fails to load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcore.errors import ArtifactError
from mlcore.inference import SequenceEncoder
from mlcore.topk import HNSW_MIN_ITEMS, BruteForceIndex, HnswIndex, TopKIndex

__all__ = ["FORMAT_VERSION", "Artifact", "ArtifactError", "artifact_load", "artifact_save"]

#: Bumped whenever the layout changes; artifact_load refuses other versions.
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"


@dataclass
class Artifact:
    """A loaded model version: item vectors, id maps, encoder and top-k index."""

    path: Path
    format_version: int
    algorithm: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    item_ids: list[str]
    item_vectors: np.ndarray
    item_popularity: np.ndarray
    event_types: list[str]
    encoder: SequenceEncoder | None
    index: TopKIndex
    item_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.item_index:
            self.item_index = {item: i for i, item in enumerate(self.item_ids)}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def artifact_save(
    path: str | Path,
    *,
    algorithm: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    item_ids: Sequence[str],
    item_vectors: np.ndarray,
    item_popularity: np.ndarray,
    event_types: Sequence[str] = (),
    encoder_weights: Mapping[str, np.ndarray] | None = None,
    encoder_config: Mapping[str, Any] | None = None,
    index_kind: str = "auto",
    seed: int = 0,
) -> Path:
    """Write an artifact directory (created if needed) and return its path.

    Args:
        index_kind: "auto" saves an HNSW graph from `HNSW_MIN_ITEMS` items; "brute" or "hnsw" force one.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
    popularity = np.asarray(item_popularity, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(item_ids) or popularity.shape != (len(item_ids),):
        raise ArtifactError(
            f"item arrays disagree: {len(item_ids)} ids, vectors {vectors.shape}, popularity {popularity.shape}"
        )
    manifest_path = path / _MANIFEST
    if manifest_path.exists():
        manifest_path.unlink()  # an overwrite in progress must not look complete
    (path / "item_ids.json").write_text(json.dumps([str(i) for i in item_ids]))
    np.save(path / "item_vectors.npy", vectors)
    np.save(path / "item_popularity.npy", popularity)
    if encoder_weights is not None:
        np.savez(
            path / "encoder.npz", **{k: np.asarray(v, dtype=np.float32) for k, v in encoder_weights.items()}
        )
    if index_kind == "auto":
        index_kind = "hnsw" if len(item_ids) >= HNSW_MIN_ITEMS else "brute"
    if index_kind == "hnsw":
        HnswIndex.build(vectors, seed=seed).save(path / "index.hnsw")
    manifest = {
        "format_version": FORMAT_VERSION,
        "algorithm": algorithm,
        "config": dict(config),
        "metrics": dict(metrics),
        "event_types": list(event_types),
        "n_items": len(item_ids),
        "dim": int(vectors.shape[1]),
        "index": index_kind,
        "encoder": dict(encoder_config)
        if encoder_weights is not None and encoder_config is not None
        else None,
    }
    tmp = path / (_MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=_json_default))
    os.replace(tmp, manifest_path)
    return path


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise ArtifactError(f"artifact file missing: {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"artifact file {path} is not valid JSON: {exc}") from exc


def _read_npy(path: Path, *, mmap: bool) -> np.ndarray:
    if not path.exists():
        raise ArtifactError(f"artifact file missing: {path}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"artifact file {path} is not a valid .npy array: {exc}") from exc


def artifact_load(path: str | Path) -> Artifact:
    """Load an artifact directory; raise ArtifactError when it is missing, corrupt or of another version."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"artifact directory not found: {path}")
    manifest = _read_json(path / _MANIFEST)
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path / _MANIFEST} must hold a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"artifact {path} has format_version {version!r}; this code reads {FORMAT_VERSION}"
        )
    try:
        algorithm = str(manifest["algorithm"])
        n_items, dim = int(manifest["n_items"]), int(manifest["dim"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path / _MANIFEST} lacks a required field: {exc}") from exc
    item_ids = _read_json(path / "item_ids.json")
    if not isinstance(item_ids, list):
        raise ArtifactError(f"{path / 'item_ids.json'} must hold a JSON list")
    vectors = _read_npy(path / "item_vectors.npy", mmap=True)
    popularity = _read_npy(path / "item_popularity.npy", mmap=False)
    if len(item_ids) != n_items or vectors.shape != (n_items, dim) or popularity.shape != (n_items,):
        raise ArtifactError(
            f"artifact {path} shapes disagree: manifest says {n_items} items × {dim}, "
            f"item_ids has {len(item_ids)}, item_vectors {vectors.shape}, item_popularity {popularity.shape}"
        )
    event_types = [str(t) for t in manifest.get("event_types") or []]
    item_ids = [str(i) for i in item_ids]
    item_index = {item: i for i, item in enumerate(item_ids)}
    encoder = None
    if manifest.get("encoder") is not None:
        try:
            # One copy of the catalog: the encoder reads the memory-mapped vectors and the same id map.
            encoder = SequenceEncoder.from_files(
                path / "encoder.npz",
                manifest["encoder"],
                item_ids,
                event_types,
                item_vectors=vectors,
                item_index=item_index,
            )
        except (OSError, KeyError, ValueError) as exc:
            raise ArtifactError(f"artifact {path} has an unusable encoder: {exc}") from exc
    index: TopKIndex
    if manifest.get("index") == "hnsw":
        try:
            index = HnswIndex.load(path / "index.hnsw")
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise ArtifactError(f"artifact {path} has an unusable HNSW index: {exc}") from exc
        if index.n_items != n_items:
            raise ArtifactError(
                f"artifact {path}: HNSW index holds {index.n_items} items, expected {n_items}"
            )
    else:
        index = BruteForceIndex(vectors)
    return Artifact(
        path=path,
        format_version=version,
        algorithm=algorithm,
        config=dict(manifest.get("config") or {}),
        metrics=dict(manifest.get("metrics") or {}),
        item_ids=item_ids,
        item_vectors=vectors,
        item_popularity=popularity,
        event_types=event_types,
        encoder=encoder,
        index=index,
        item_index=item_index,
    )
