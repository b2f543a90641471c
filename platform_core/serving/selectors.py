"""Reads of the serving API: recommendations, similar items, popular items, risk, persona.

The flow of :func:`recommendation_list`:

1. the user's latest events (DB, the (tenant, user, timestamp) index), so an
   event counts as soon as its ingestion commits;
2. the user's vector from the active model's NumPy encoder;
3. candidates from the top-k index (``SERVING_CANDIDATE_FACTOR`` × k), plus
   new items reachable through attribute similarity; the client's filter;
4. the domain's ``rerank`` with the tenant's config (filters, e.g. consumed
   items, and boosts, each recorded);
5. exploration slots for long-tail or new items;
6. explanations (leave-one-out event contributions + every rule) and a signed
   ``recommendation_id``.

A user without usable history (or a tenant without a model) gets the popular
items of users like them (cold start) through the same filter and rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
from django.conf import settings
from django.utils import timezone

from domains.base import Adjustment, Candidate, ConfigValues, DomainPlugin, RerankContext, UserRecord
from platform_core.catalog.models import EndUser
from platform_core.catalog.selectors import enduser_get_for_tenant, item_get_for_tenant
from platform_core.common.errors import NotFound, ValidationFailed
from platform_core.plugins.crypto import attributes_unseal, features_unseal
from platform_core.plugins.selectors import tenant_config_get, tenant_plugin_get
from platform_core.serving import explanations
from platform_core.serving.candidates import (
    History,
    as_iso,
    attribute_vector,
    history_get,
    item_attributes_get,
    new_items_get,
    popular_for_user,
    popular_scores,
    user_history_get,
    user_record,
)
from platform_core.serving.catalog_snapshot import catalog_generation
from platform_core.serving.errors import ServingError
from platform_core.serving.filters import ItemFilter, filter_parse
from platform_core.serving.model_cache import ServingModel, serving_model_get
from platform_core.serving.segments import segment_resolve, segment_test_for
from platform_core.serving.services import recommendation_served, recommendation_token_issue
from platform_core.serving.user_state import (
    ListInputs,
    ServedList,
    served_list_get,
    served_list_store,
    user_state_begin,
    user_state_get,
    user_state_store,
)
from platform_core.serving.user_vectors import user_vector_get
from platform_core.tenancy.models import Tenant

RULE_EXPLORATION = "serving.exploration"
#: Rounds of widening the candidate pool when filters and rules remove too many.
MAX_POOL_ROUNDS = 4


# --------------------------------------------------------------------------- results
@dataclass(slots=True)
class RecommendedItem:
    item_id: str
    score: float
    rank: int
    source: str  # model | attribute_similarity | popular… (which path proposed it)
    model_score: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecommendationList:
    recommendation_id: str
    user_id: str | None
    model_version: int | None
    strategy: str  # "model" or the cold-start source
    items: list[RecommendedItem]
    generated_at: datetime


@dataclass
class _Pool:
    """Scored candidates with what explanations need."""

    candidates: list[Candidate]
    vectors: dict[str, np.ndarray]
    model_scores: dict[str, float]
    sources: dict[str, str]
    exhausted: bool


# --------------------------------------------------------------------------- parameters
def k_clean(k: Any) -> int:
    """Validate ``k`` (1 … SERVING_MAX_K)."""
    limit = settings.SERVING_MAX_K
    try:
        value = int(k)
    except (TypeError, ValueError):
        value = None
    if value is None or str(k).strip() not in (str(value), f"+{value}") or not 1 <= value <= limit:
        raise ValidationFailed(
            f"k must be an integer from 1 to {limit}; got {k!r}.",
            code=ServingError.INVALID_PARAMETER,
            fields={"k": [f"must be an integer from 1 to {limit}"]},
        )
    return value


def item_filter_get(
    *,
    plugin: DomainPlugin,
    expression: str | None,
    params: Mapping[str, Any] | None,
    tenant: Tenant | None = None,
    user_external_id: str | None = None,
) -> ItemFilter | None:
    """The parsed filter; with ``tenant`` and a requesting user, ``user.segment`` terms can test them."""
    if expression is None or expression == "":
        return None
    segment_test = (
        segment_test_for(tenant=tenant, user_external_id=user_external_id) if tenant is not None else None
    )
    return filter_parse(
        expression=expression,
        schema=plugin.item_schema,
        params=params,
        domain=plugin.id,
        segment_test=segment_test,
    )


_WINDOW = re.compile(r"^(\d{1,4})([hdw])$")


def window_clean(window: str | None) -> timedelta | None:
    """``"7d"``, ``"24h"``, ``"2w"`` → timedelta (at most 365 days); ``"all"`` → None."""
    if window in (None, ""):
        return timedelta(days=7)
    if window == "all":
        return None
    m = _WINDOW.match(str(window))
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
        if timedelta(0) < delta <= timedelta(days=365):
            return delta
    raise ValidationFailed(
        f"window must look like 24h, 7d or 2w (at most 365 days), or be 'all'; got {window!r}.",
        code=ServingError.INVALID_PARAMETER,
        fields={"window": ["must look like 24h, 7d or 2w (≤ 365 days), or be 'all'"]},
    )


def exploration_clean(*, value: Any, config: Mapping[str, Any]) -> float:
    if value is None or value == "":
        return float(config.get("exploration", settings.SERVING_EXPLORATION_DEFAULT))
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise ValidationFailed(
            f"explore must be a number from 0 to 1 (the share of slots for long-tail or new items); got {value!r}.",
            code=ServingError.INVALID_PARAMETER,
            fields={"explore": ["must be a number from 0 to 1"]},
        )
    return share


# --------------------------------------------------------------------------- pools
@dataclass(frozen=True)
class _Sequence:
    """The encoder's input: known-item, non-label events (plus one older, for leave-one-out)."""

    positions: list[int]  # indices into the history's records, oldest first
    rows: list[int]  # the items' rows in the model

    def events(self, history: History) -> list[explanations.SequenceEvent]:
        return [
            explanations.SequenceEvent(
                event_id=history.event_ids[n],
                item_id=history.records[n].item_id,  # type: ignore[arg-type]
                type=history.records[n].type,
                timestamp=as_iso(history.records[n].timestamp),
            )
            for n in self.positions
        ]


def _user_sequence(*, history: History, model: ServingModel, plugin: DomainPlugin) -> _Sequence:
    encoder = model.artifact.encoder
    max_len = encoder.max_len if encoder is not None else 50
    labels = {e.name for e in plugin.event_types if e.is_label}  # outcomes, not interactions
    index = model.artifact.item_index
    positions: list[int] = []
    rows: list[int] = []
    for n, r in enumerate(history.records):
        if r.item_id and r.type not in labels:
            row = index.get(r.item_id)
            if row is not None:
                positions.append(n)
                rows.append(row)
    return _Sequence(positions=positions[-(max_len + 1) :], rows=rows[-(max_len + 1) :])


def _user_vector(
    *,
    tenant: Tenant,
    user: EndUser,
    model: ServingModel,
    history: History,
    sequence: _Sequence,
    cached: bool = True,
) -> np.ndarray | None:
    if not sequence.rows:
        return None
    encoder = model.artifact.encoder
    if encoder is None:
        # Models without a sequence encoder (baselines): the mean of the recent items' vectors.
        return np.asarray(model.vectors[np.sort(sequence.rows[-50:])], dtype=np.float32).mean(axis=0)
    items = [history.records[n].item_id for n in sequence.positions]
    types = [history.records[n].type for n in sequence.positions]
    if not cached:
        return encoder.embed(items, types)
    signature = hash(
        (
            model.version_id,
            tuple(history.event_ids[n] for n in sequence.positions),
            tuple(sequence.rows),
            tuple(types),
        )
    )
    return user_vector_get(
        key=(tenant.pk, user.pk), signature=signature, compute=lambda: encoder.embed(items, types)
    )


def _user_inputs(
    *,
    tenant: Tenant,
    plugin: DomainPlugin,
    external_id: str,
    model: ServingModel | None,
    explain: bool,
    began: int | None,
) -> tuple[EndUser, History, _Sequence, np.ndarray | None]:
    """The user, their history, the encoder's input and the user vector: from this process's
    user-state cache when it holds them (not for explanations: they cite event ids), else from
    the database (then kept there, unless the user changed since ``began``)."""
    if model is None:
        user, history = user_history_get(tenant=tenant, plugin=plugin, external_id=external_id)
        return user, history, _Sequence(positions=[], rows=[]), None
    if not explain:
        state = user_state_get(
            tenant=tenant, plugin=plugin, external_id=external_id, version_id=model.version_id
        )
        if state is not None:
            return state.user, state.history, _Sequence(state.positions, state.rows), state.vector
    if began is None:
        began = user_state_begin()
    user, history = user_history_get(tenant=tenant, plugin=plugin, external_id=external_id)
    sequence = _user_sequence(history=history, model=model, plugin=plugin)
    # With the user-state cache live the vector is kept there; the vector cache would hold it twice.
    query = _user_vector(
        tenant=tenant, user=user, model=model, history=history, sequence=sequence, cached=began is None
    )
    user_state_store(
        began=began, tenant=tenant, plugin=plugin, user=user, history=history,
        version_id=model.version_id, positions=sequence.positions, rows=sequence.rows, vector=query,
    )  # fmt: skip
    return user, history, sequence, query


def _model_pool(
    *,
    tenant: Tenant,
    plugin: DomainPlugin,
    model: ServingModel,
    query: np.ndarray,
    size: int,
    exclude: set[int],
    item_filter: ItemFilter | None,
    extra: list[tuple[str, dict[str, Any], np.ndarray]],
) -> _Pool:
    """Index candidates (+ new items scored through attribute similarity), filtered, with attributes."""
    art = model.artifact
    idx, scores = art.index.search(query, size, exclude=exclude)
    ids = art.item_ids.take(idx)
    attrs = item_attributes_get(tenant=tenant, plugin=plugin, item_ids=ids)
    pool = _Pool([], {}, {}, {}, exhausted=len(idx) < size)
    for i, item_id, score in zip(idx.tolist(), ids, scores.tolist(), strict=True):
        a = attrs.get(item_id)
        if a is None or (item_filter is not None and not item_filter.matches(a)):
            continue  # deleted/deactivated since training, or filtered out
        pool.candidates.append(Candidate(item_id=item_id, score=float(score), attributes=a))
        pool.vectors[item_id] = model.vectors[i]
        pool.model_scores[item_id] = float(score)
        pool.sources[item_id] = "model"
    for item_id, a, vector in extra:
        if item_filter is not None and not item_filter.matches(a):
            continue
        score = float(vector @ query)
        pool.candidates.append(Candidate(item_id=item_id, score=score, attributes=a))
        pool.vectors[item_id] = vector
        pool.model_scores[item_id] = score
        pool.sources[item_id] = "attribute_similarity"
    return pool


def _popular_pool(
    *,
    tenant: Tenant,
    plugin: DomainPlugin,
    rows: list[tuple[str, float]],
    source: str,
    item_filter: ItemFilter | None,
) -> _Pool:
    top = max((s for _, s in rows), default=1.0) or 1.0
    attrs = item_attributes_get(tenant=tenant, plugin=plugin, item_ids=[i for i, _ in rows])
    pool = _Pool([], {}, {}, {}, exhausted=True)
    for item_id, s in rows:
        a = attrs.get(item_id)
        if a is None or (item_filter is not None and not item_filter.matches(a)):
            continue
        # Popularity normalised to 0–1 so rule boosts weigh the same as on model scores.
        pool.candidates.append(Candidate(item_id=item_id, score=s / top, attributes=a))
        pool.sources[item_id] = source
    return pool


def _explore(ranked: list[Candidate], k: int, share: float, is_tail: Any) -> list[Candidate]:
    """Give ``round(k × share)`` of the last slots to the best long-tail/new items not already in."""
    slots = int(round(k * share))
    if slots <= 0 or len(ranked) <= k - slots:
        return ranked[:k]
    head = ranked[: k - slots]
    rest = ranked[k - slots :]
    tail = [c for c in rest if is_tail(c.item_id)][:slots]
    for c in tail:
        c.adjustments.append(
            Adjustment(
                rule=RULE_EXPLORATION, effect="flag", detail="long-tail or new item given an exploration slot"
            )
        )
    chosen = {c.item_id for c in tail}
    filler = [c for c in rest if c.item_id not in chosen][: slots - len(tail)]
    return head + sorted(filler + tail, key=lambda c: -c.score)


# --------------------------------------------------------------------------- recommendations
def recommendation_list(
    *,
    tenant: Tenant,
    external_id: str,
    k: int = 10,
    filter_expression: str | None = None,
    filter_params: Mapping[str, Any] | None = None,
    explain: bool = False,
    explore: Any = None,
    context: Mapping[str, Any] | None = None,
) -> RecommendationList:
    """Top-k items for a user (see the module docstring for the steps).

    Raises:
        NotFound: no such user in this tenant.
        ValidationFailed: bad k, filter or explore.
    """
    k = k_clean(k)
    plugin = tenant_plugin_get(tenant=tenant)
    config = tenant_config_get(tenant=tenant)
    item_filter = item_filter_get(
        plugin=plugin, expression=filter_expression, params=filter_params, tenant=tenant, user_external_id=external_id
    )  # fmt: skip
    share = exploration_clean(value=explore, config=config)
    model = serving_model_get(tenant=tenant)
    # Read before anything of the user: a list computed from data a change overtook is not kept.
    began = user_state_begin() if model is not None and not explain else None
    extra = new_items_get(tenant=tenant, plugin=plugin, model=model) if model is not None else []
    reuse = None
    if began is not None and model is not None:
        reuse = _list_reuse_key(
            tenant=tenant, plugin=plugin, config=config, model=model, extra=extra, k=k,
            filter_expression=filter_expression, filter_params=filter_params, share=share, context=context,
            segments=item_filter.user_segments if item_filter is not None else (),
        )  # fmt: skip
        served = served_list_get(
            tenant=tenant, external_id=external_id, params=reuse[0], inputs=reuse[1],
            max_age=settings.SERVING_LIST_CACHE_CLOCK_SECONDS if plugin.rerank_reads_clock
            else settings.SERVING_USER_STATE_MAX_AGE,
        ) if reuse is not None else None  # fmt: skip
        if served is not None:
            return _served_again(tenant=tenant, external_id=external_id, model=model, served=served)
    user, history, sequence, query = _user_inputs(
        tenant=tenant, plugin=plugin, external_id=external_id, model=model, explain=explain, began=began
    )
    now = timezone.now()
    rerank_context = RerankContext(
        user=user_record(plugin=plugin, user=user),
        history=history.records,
        now=now,
        request=dict(context or {}),
        item_attributes=history.item_attributes,
    )
    exclude: set[int] = set()
    if model is not None and getattr(plugin, "exclude_seen", False):
        exclude = set(sequence.rows)

    if query is not None and model is not None:
        strategy = "model"
        size = max(k * settings.SERVING_CANDIDATE_FACTOR, k + 10)
        for _ in range(MAX_POOL_ROUNDS):
            pool = _model_pool(
                tenant=tenant, plugin=plugin, model=model, query=query, size=size,
                exclude=exclude, item_filter=item_filter, extra=extra,
            )  # fmt: skip
            result = plugin.rerank(pool.candidates, rerank_context, config)
            if len(result.candidates) >= k or pool.exhausted:
                break
            size *= 4
    else:
        strategy, rows = popular_for_user(
            tenant=tenant, plugin=plugin, user=user, model=model, limit=max(k * 10, 100)
        )
        pool = _popular_pool(
            tenant=tenant, plugin=plugin, rows=rows, source=strategy, item_filter=item_filter
        )
        result = plugin.rerank(pool.candidates, rerank_context, config)

    def is_tail(item_id: str) -> bool:
        if pool.sources.get(item_id) == "attribute_similarity":
            return True
        row = model.artifact.item_index.get(item_id) if model is not None else None
        return row is not None and bool(model.long_tail[row])  # type: ignore[union-attr]

    final = _explore(list(result.candidates), k, share, is_tail)
    loo = None
    if explain and query is not None and model is not None and model.artifact.encoder is not None:
        loo = explanations.leave_one_out(
            encoder=model.artifact.encoder,
            sequence=sequence.events(history),
            max_len=model.artifact.encoder.max_len,
        )
    items = [
        _recommended(c, rank, pool, loo if explain else None, explain)
        for rank, c in enumerate(final, start=1)
    ]
    version_id = model.version_id if model is not None else None
    token = recommendation_token_issue(
        tenant=tenant, version_id=version_id, user_id=user.external_id, item_ids=[i.item_id for i in items]
    )
    recommendation_served(tenant_id=tenant.pk, version_id=version_id, n_items=len(items))
    if reuse is not None and strategy == "model" and model is not None:
        served_list_store(
            began=began, tenant=tenant, external_id=external_id,
            served=_served_list(params=reuse[0], inputs=reuse[1], model=model, items=items, generated_at=now),
        )  # fmt: skip
    return RecommendationList(
        recommendation_id=token,
        user_id=user.external_id,
        model_version=version_id,
        strategy=strategy,
        items=items,
        generated_at=now,
    )


# --------------------------------------------------------------------------- reuse of a computed list
_last_inputs: dict[int, ListInputs] = {}
_params_seen: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_PARAMS_SEEN_MAX = 1024


def _canonical(value: Mapping[str, Any] | None) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS) if value else b""


def _list_reuse_key(
    *,
    tenant: Tenant,
    plugin: DomainPlugin,
    config: ConfigValues,
    model: ServingModel,
    extra: list[Any],
    k: int,
    filter_expression: str | None,
    filter_params: Mapping[str, Any] | None,
    share: float,
    context: Mapping[str, Any] | None,
    segments: tuple[tuple[str, bool], ...] = (),
) -> tuple[tuple[Any, ...], ListInputs] | None:
    """(the request's parameters, the list's other inputs), or None when a list can't be reused."""
    catalog = catalog_generation(tenant_id=tenant.pk)
    if catalog is None:
        return None  # attributes come from the database meanwhile: no generation to compare
    try:
        # ``segments``: the user's memberships a user.segment term read; a recomputation that
        # changes one gives other parameters, so a list kept before is not served again.
        params = (k, filter_expression or "", _canonical(filter_params), share, _canonical(context), segments)
    except TypeError:  # a parameter orjson can't write (e.g. an integer past 64 bits)
        return None
    inputs = ListInputs(
        domain=plugin.id, version_id=model.version_id, catalog=catalog, config=config, new_items=extra
    )
    # Shared by every list computed from the same inputs and parameters: one object each, not one
    # per kept list (most requests of a tenant ask the same way).
    last = _last_inputs.get(tenant.pk)
    if last is not None and last.same(inputs):
        inputs = last
    else:
        _last_inputs[tenant.pk] = inputs
    if len(_params_seen) >= _PARAMS_SEEN_MAX:
        _params_seen.clear()
    return _params_seen.setdefault(params, params), inputs


def _served_list(
    *,
    params: tuple[Any, ...],
    inputs: ListInputs,
    model: ServingModel,
    items: list[RecommendedItem],
    generated_at: datetime,
) -> ServedList:
    index = model.artifact.item_index
    return ServedList.pack(
        params=params,
        inputs=inputs,
        generated_at=generated_at,
        item_ids=[i.item_id for i in items],
        scores=[i.score for i in items],
        rows=[index.get(i.item_id) for i in items],
        sources=[i.source for i in items],
        flags=[i.flags for i in items],
    )


def _served_again(
    *, tenant: Tenant, external_id: str, model: ServingModel, served: ServedList
) -> RecommendationList:
    """A kept list, with a new ``recommendation_id`` (feedback is per serving) and its first ``generated_at``."""
    ids, scores, sources, flags = served.unpack(model.artifact.item_ids)
    items = [
        RecommendedItem(item_id=i, score=score, rank=rank, source=source, flags=dict(f))
        for rank, (i, score, source, f) in enumerate(zip(ids, scores, sources, flags, strict=True), 1)
    ]
    token = recommendation_token_issue(
        tenant=tenant, version_id=model.version_id, user_id=external_id, item_ids=ids
    )
    recommendation_served(tenant_id=tenant.pk, version_id=model.version_id, n_items=len(items))
    return RecommendationList(
        recommendation_id=token,
        user_id=external_id,
        model_version=model.version_id,
        strategy="model",
        items=items,
        generated_at=served.generated_at,
    )


def _recommended(
    c: Candidate, rank: int, pool: _Pool, loo: explanations.LeaveOneOut | None, explain: bool
) -> RecommendedItem:
    model_score = pool.model_scores.get(c.item_id)
    item = RecommendedItem(
        item_id=c.item_id,
        score=round(float(c.score), 6),
        rank=rank,
        source=pool.sources.get(c.item_id, "model"),
        model_score=round(model_score, 6) if model_score is not None else None,
        flags=dict(c.flags),
    )
    if explain:
        item.rules = explanations.rules_for_item(c.adjustments)
        if model_score is not None:
            item.events = explanations.events_for_item(
                loo=loo, score=model_score, vector=pool.vectors.get(c.item_id)
            )
    return item


# --------------------------------------------------------------------------- similar items
def item_similar_list(
    *,
    tenant: Tenant,
    external_id: str,
    k: int = 10,
    filter_expression: str | None = None,
    filter_params: Mapping[str, Any] | None = None,
    user_external_id: str | None = None,
) -> RecommendationList:
    """Items closest to an item in the active model's space; a new item goes through its attributes.

    With ``user_external_id`` the domain's rules for that user apply too
    (e.g. contraindications); without it, only user-independent rules can.
    """
    k = k_clean(k)
    plugin = tenant_plugin_get(tenant=tenant)
    config = tenant_config_get(tenant=tenant)
    item_filter = item_filter_get(
        plugin=plugin, expression=filter_expression, params=filter_params, tenant=tenant,
        user_external_id=user_external_id,
    )  # fmt: skip
    item = item_get_for_tenant(tenant=tenant, external_id=external_id)
    user_rec: UserRecord | None = None
    records: list[Any] = []
    history_attrs: dict[str, dict[str, Any]] = {}
    if user_external_id:
        user = enduser_get_for_tenant(tenant=tenant, external_id=user_external_id)
        user_rec = user_record(plugin=plugin, user=user)
        hist = history_get(tenant=tenant, plugin=plugin, user=user)
        records = hist.records
        history_attrs = hist.item_attributes
    context = RerankContext(
        user=user_rec, history=records, now=timezone.now(), request={}, item_attributes=history_attrs
    )
    model = serving_model_get(tenant=tenant)
    if model is None:
        raise NotFound(
            "This tenant has no active model yet, so there are no similar items; train one first.",
            code=ServingError.NO_MODEL,
        )
    row = model.artifact.item_index.get(item.external_id)
    if row is not None:
        query = np.asarray(model.vectors[row], dtype=np.float32)
        exclude = {row}
    else:
        attrs = attributes_unseal(plugin=plugin, kind="item", attributes=item.attributes or {})
        vector = attribute_vector(tenant=tenant, plugin=plugin, model=model, attributes=attrs)
        if vector is None:
            raise NotFound(
                f"Item {external_id!r} is newer than the model and shares no attributes with known items.",
                code=ServingError.NO_MODEL,
            )
        query, exclude = vector, set()
    extra = [e for e in new_items_get(tenant=tenant, plugin=plugin, model=model) if e[0] != item.external_id]
    size = max(k * settings.SERVING_CANDIDATE_FACTOR, k + 10)
    for _ in range(MAX_POOL_ROUNDS):
        pool = _model_pool(
            tenant=tenant, plugin=plugin, model=model, query=query, size=size,
            exclude=exclude, item_filter=item_filter, extra=extra,
        )  # fmt: skip
        pool.candidates = [c for c in pool.candidates if c.item_id != item.external_id]
        result = plugin.rerank(pool.candidates, context, config)
        if len(result.candidates) >= k or pool.exhausted:
            break
        size *= 4
    items = [_recommended(c, rank, pool, None, True) for rank, c in enumerate(result.candidates[:k], start=1)]
    token = recommendation_token_issue(
        tenant=tenant,
        version_id=model.version_id,
        user_id=user_external_id or "",
        item_ids=[i.item_id for i in items],
        source_item_id=item.external_id,
    )
    # Counted as shown like recommendations: the version's CTR counts their clicks too.
    recommendation_served(tenant_id=tenant.pk, version_id=model.version_id, n_items=len(items))
    return RecommendationList(
        recommendation_id=token,
        user_id=user_external_id,
        model_version=model.version_id,
        strategy="similar" if row is not None else "attribute_similarity",
        items=items,
        generated_at=context.now,
    )


# --------------------------------------------------------------------------- popular
@dataclass
class PopularItem:
    item_id: str
    score: float
    rank: int


def item_popular_list(
    *,
    tenant: Tenant,
    k: int = 10,
    window: str | None = "7d",
    filter_expression: str | None = None,
    filter_params: Mapping[str, Any] | None = None,
    segment: str | None = None,
) -> list[PopularItem]:
    """The most interacted-with active items in the window (events weighted by their type's weight).

    With ``segment`` (a segment's name or id, ``name:n`` for one cluster) only its members' events count.
    """
    k = k_clean(k)
    delta = window_clean(window)
    plugin = tenant_plugin_get(tenant=tenant)
    item_filter = item_filter_get(plugin=plugin, expression=filter_expression, params=filter_params)
    limit = k if item_filter is None else max(k * 20, 500)
    lookup, cache_key = None, ""
    if segment:
        ref = segment_resolve(tenant=tenant, ref=segment, field="segment")
        lookup, cache_key = ref.event_lookup, f"analytics-segment:{ref.version}"
    rows = popular_scores(
        tenant=tenant, plugin=plugin, window=delta, limit=limit, lookup=lookup, cache_key=cache_key
    )
    if item_filter is not None:
        attrs = item_attributes_get(tenant=tenant, plugin=plugin, item_ids=[i for i, _ in rows])
        rows = [(i, s) for i, s in rows if i in attrs and item_filter.matches(attrs[i])]
    return [PopularItem(item_id=i, score=round(s, 6), rank=n) for n, (i, s) in enumerate(rows[:k], start=1)]


# --------------------------------------------------------------------------- risk
@dataclass
class RiskScore:
    user_id: str
    score: float
    reasons: list[dict[str, Any]]
    model_version: int | None
    computed_at: datetime


def risk_score_get(*, tenant: Tenant, external_id: str) -> RiskScore:
    """The domain's risk score of a user from their recent events.

    Raises:
        NotFound: no such user, or the tenant's domain has no risk scorer.
    """
    plugin = tenant_plugin_get(tenant=tenant)
    if not plugin.has_risk_score():
        raise NotFound(
            f"Domain {plugin.id!r} has no risk scorer; risk scores exist for domains that define one.",
            code=ServingError.RISK_NOT_SUPPORTED,
        )
    user = enduser_get_for_tenant(tenant=tenant, external_id=external_id)
    history = history_get(tenant=tenant, plugin=plugin, user=user, limit=1000)
    result = plugin.risk_score(
        history.records, user_record(plugin=plugin, user=user), tenant_config_get(tenant=tenant)
    )
    model = serving_model_get(tenant=tenant)
    return RiskScore(
        user_id=user.external_id,
        score=round(float(result.score), 6),
        reasons=[
            {"code": r.code, "weight": round(float(r.weight), 6), "detail": r.detail} for r in result.reasons
        ],
        model_version=model.version_id if model is not None else None,
        computed_at=timezone.now(),
    )


# --------------------------------------------------------------------------- persona
def user_persona_get(*, tenant: Tenant, external_id: str, with_embedding: bool = False) -> dict[str, Any]:
    """The user's stored profile (built by the profiles jobs); the embedding only on request.

    Raises:
        NotFound: no such user, or no profile computed yet.
    """
    from platform_core.profiles.models import UserProfile

    user = enduser_get_for_tenant(tenant=tenant, external_id=external_id)
    profile = UserProfile.objects.for_tenant(tenant).filter(user=user).first()
    if profile is None:
        raise NotFound(
            f"No profile computed for user {external_id!r} yet; profiles are built after events arrive.",
            code=ServingError.NO_PROFILE,
        )
    out: dict[str, Any] = {
        "user_id": user.external_id,
        "interests": profile.interests,
        "trajectory": profile.trajectory,
        "activity": profile.activity,
        "segment": profile.segment,
        "features": features_unseal(plugin=tenant_plugin_get(tenant=tenant), features=profile.features),
        "n_events": profile.n_events,
        "model_version": profile.model_version_id,
        "computed_at": profile.computed_at,
    }
    if with_embedding:
        vector = profile.embedding_vector()
        out["embedding"] = [round(float(x), 6) for x in vector] if vector is not None else None
    return out


# --------------------------------------------------------------------------- online metrics
def model_version_online_metrics(*, tenant: Tenant, version_id: int) -> dict[str, Any]:
    """Online counters of one version (for consoles showing them beside the offline metrics)."""
    from platform_core.serving.models import ModelVersionServingStats

    stats = ModelVersionServingStats.objects.for_tenant(tenant).filter(model_version_id=version_id).first()
    if stats is None:
        return {"lists_served": 0, "items_shown": 0, "clicks": 0, "conversions": 0, "dismissals": 0,
                "ctr": None, "conversion_rate": None}  # fmt: skip
    return {
        "lists_served": stats.lists_served,
        "items_shown": stats.items_shown,
        "clicks": stats.clicks,
        "conversions": stats.conversions,
        "dismissals": stats.dismissals,
        "ctr": stats.ctr,
        "conversion_rate": stats.conversion_rate,
    }
