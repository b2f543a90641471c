"""Fixtures for serving tests: real artifacts written by mlcore.artifacts.artifact_save.

The encoder is a real one-block SASRec encoder (mlcore.inference) with small
seeded random weights, so every expected score can be recomputed in the test
with the same NumPy code (``model.encoder.embed`` and a dot product).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone

from mlcore.artifacts import artifact_load, artifact_save
from mlcore.inference import SequenceEncoder
from platform_core.jobs.models import ModelVersion, VersionState
from platform_core.serving.candidates import serving_caches_clear
from platform_core.serving.model_cache import model_cache_clear
from platform_core.serving.services import serving_stats_flush
from platform_core.tenancy.models import Tenant
from tests.factories import EndUserFactory, EventFactory, ItemFactory

DIM = 8
MAX_LEN = 10
EVENT_TYPES = ("view", "add_to_cart", "favorite", "purchase")


def encoder_weights(n_items: int, *, seed: int, ff: int = 16) -> dict[str, np.ndarray]:
    """Weights of a 1-block, 1-head encoder in mlcore.inference's layout."""
    rng = np.random.default_rng(seed)

    def r(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (rng.normal(0, scale, size=shape)).astype(np.float32)

    w = {
        "item_emb": r(n_items + 1, DIM),
        "pos_emb": r(MAX_LEN, DIM, scale=0.1),
        "type_emb": r(len(EVENT_TYPES) + 1, DIM, scale=0.1),
        "lnf_gamma": np.ones(DIM, np.float32),
        "lnf_beta": np.zeros(DIM, np.float32),
    }
    p = "block0_"
    for name in ("wq", "wk", "wv", "wo"):
        w[p + name] = r(DIM, DIM)
    for name in ("bq", "bk", "bv", "bo"):
        w[p + name] = np.zeros(DIM, np.float32)
    w[p + "ln1_gamma"] = w[p + "ln2_gamma"] = np.ones(DIM, np.float32)
    w[p + "ln1_beta"] = w[p + "ln2_beta"] = np.zeros(DIM, np.float32)
    w[p + "w1"], w[p + "b1"] = r(DIM, ff), np.zeros(ff, np.float32)
    w[p + "w2"], w[p + "b2"] = r(ff, DIM), np.zeros(DIM, np.float32)
    return w


ENCODER_CONFIG = {"dim": DIM, "heads": 1, "blocks": 1, "max_len": MAX_LEN, "emb_scale": 1.0, "ln_eps": 1e-6}


@dataclass
class Built:
    version: ModelVersion
    item_ids: list[str]
    vectors: np.ndarray
    popularity: np.ndarray
    encoder: SequenceEncoder

    def user_vector(self, items: Sequence[str], types: Sequence[str] | None = None) -> np.ndarray:
        # Events in these tests are views unless said otherwise.
        vec = self.encoder.embed(list(items), list(types) if types is not None else ["view"] * len(items))
        assert vec is not None
        return vec

    def score(self, query: np.ndarray, item_id: str) -> float:
        return float(self.vectors[self.item_ids.index(item_id)] @ query)


@pytest.fixture(autouse=True)
def _serving_state(settings, tmp_path: Path) -> Iterator[None]:
    """Artifacts in a temporary storage; no model or popularity cached across tests."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    settings.SERVING_STATS_FLUSH_SECONDS = 3600  # tests flush explicitly
    model_cache_clear()
    serving_caches_clear()
    yield
    model_cache_clear()
    serving_caches_clear()
    serving_stats_flush()


_seq = itertools.count()


@pytest.fixture
def model_version_make(tmp_path: Path) -> Callable[..., Built]:
    """``model_version_make(tenant, item_ids, seed=, popularity=, state=)`` → an artifact + ModelVersion."""

    def make(
        tenant: Tenant,
        item_ids: Sequence[str],
        *,
        seed: int = 0,
        popularity: Sequence[float] | None = None,
        state: str = VersionState.ACTIVE,
        index_kind: str = "brute",
    ) -> Built:
        n = len(item_ids)
        weights = encoder_weights(n, seed=seed)
        # Item vectors are the encoder's item embeddings (tied, as in SASRec).
        vectors = weights["item_emb"][1:].copy()
        pop = np.asarray(popularity if popularity is not None else np.arange(n, 0, -1), dtype=np.float32)
        name = f"{tenant.slug}/v{next(_seq)}"
        path = tmp_path / "artifacts" / name
        artifact_save(
            path,
            algorithm="transformer",
            config={"dim": DIM},
            metrics={"transformer": {"val_ndcg@10": 0.3}},
            item_ids=list(item_ids),
            item_vectors=vectors,
            item_popularity=pop,
            event_types=EVENT_TYPES,
            encoder_weights=weights,
            encoder_config=ENCODER_CONFIG,
            index_kind=index_kind,
        )
        if state == VersionState.ACTIVE:
            ModelVersion.objects.for_tenant(tenant).filter(state=VersionState.ACTIVE).update(
                state=VersionState.RETIRED
            )
        version = ModelVersion.unscoped.create(  # tenant given explicitly
            tenant=tenant,
            algorithm="transformer",
            artifact_path=name,
            metrics={"transformer": {"val_ndcg@10": 0.3}},
            validation_metric="val_ndcg@10",
            state=state,
            gate_passed=True,
            activated_at=timezone.now() if state == VersionState.ACTIVE else None,
        )
        art = artifact_load(path)
        assert art.encoder is not None
        return Built(
            version=version, item_ids=list(item_ids), vectors=vectors, popularity=pop, encoder=art.encoder
        )

    return make


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def events_make(tenant: Tenant, user, items: Sequence[str], types: Sequence[str] | None = None, start=T0):
    """Events of ``user`` on the given item ids (existing items), one minute apart, oldest first."""
    from platform_core.catalog.models import Item

    out = []
    for n, item_id in enumerate(items):
        item = Item.objects.for_tenant(tenant).get(external_id=item_id)
        out.append(
            EventFactory(
                tenant=tenant,
                user=user,
                item=item,
                type=(types[n] if types else "view"),
                timestamp=start + dt.timedelta(minutes=n),
                context={"amount": 10.0, "quantity": 1} if types and types[n] == "purchase" else {},
            )
        )
    return out


@dataclass
class Shop:
    tenant: Tenant
    item_ids: list[str]
    built: Built


@pytest.fixture
def shop(tenant: Tenant, model_version_make) -> Shop:
    """Tenant A (ecommerce): 20 items (even = shoes, odd = bags), in stock, no prices; an active model."""
    ids = [f"i{n}" for n in range(20)]
    for n, item_id in enumerate(ids):
        ItemFactory(
            tenant=tenant,
            external_id=item_id,
            attributes={"category": "shoes" if n % 2 == 0 else "bags", "in_stock": True},
        )
    built = model_version_make(tenant, ids, seed=1)
    return Shop(tenant=tenant, item_ids=ids, built=built)


__all__ = ["T0", "Built", "Shop", "EndUserFactory", "events_make"]
