"""One contract test over every registered plugin (settings list + entry points)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter

import pytest
from django.conf import settings

from domains.base import Candidate, DomainPlugin, EventRecord, RerankContext, UserRecord, parse_datetime
from domains.registry import plugin_check, plugin_list, plugins_load


def _plugins() -> list[DomainPlugin]:
    try:
        return plugin_list()
    except Exception:
        return list(plugins_load(paths=list(settings.DOMAIN_PLUGINS)).values())


PLUGINS = _plugins()
SIX = {"ecommerce", "social", "education", "finance_risk", "healthcare", "transport"}


@pytest.fixture(scope="module", params=PLUGINS, ids=lambda p: p.id)
def plugin(request: pytest.FixtureRequest) -> DomainPlugin:
    return request.param


@pytest.fixture(scope="module")
def sample(plugin: DomainPlugin):  # type: ignore[no-untyped-def]
    return plugin.sample_data(7, 40)


def test_the_six_domains_are_registered() -> None:
    assert {p.id for p in PLUGINS} >= SIX


def test_schemas_are_well_formed(plugin: DomainPlugin) -> None:
    plugin_check(type(plugin), "contract test")  # raises PluginError naming the field
    assert all(w >= 0 for w in plugin.event_weights().values())
    assert any(w > 0 for w in plugin.event_weights().values())
    assert plugin.default_config() is not None


def test_sample_data_passes_validation_with_zero_rejections(plugin: DomainPlugin, sample) -> None:  # type: ignore[no-untyped-def]
    assert sample.users and sample.items and sample.events
    problems = {}
    for i, u in enumerate(sample.users):
        problems.update({f"users[{i}].{k}": v for k, v in plugin.validate_user(u["attributes"]).items()})
    for i, it in enumerate(sample.items):
        problems.update({f"items[{i}].{k}": v for k, v in plugin.validate_item(it["attributes"]).items()})
    for i, e in enumerate(sample.events):
        problems.update(plugin.validate_event(e, path=f"events[{i}]"))
        assert parse_datetime(e["timestamp"]) is not None, e
        assert set(e) == {"event_id", "user_id", "item_id", "type", "timestamp", "value", "context"}
    assert problems == {}
    items = {it["item_id"] for it in sample.items}
    users = {u["user_id"] for u in sample.users}
    assert all(e["item_id"] is None or e["item_id"] in items for e in sample.events)
    assert all(e["user_id"] in users for e in sample.events)
    assert len({e["event_id"] for e in sample.events}) == len(sample.events)
    json.dumps([sample.users, sample.items, sample.events])  # the API's JSON shapes


def test_sample_data_is_identical_for_the_same_seed(plugin: DomainPlugin, sample) -> None:  # type: ignore[no-untyped-def]
    again = plugin.sample_data(7, 40)
    assert (again.users, again.items, again.events) == (sample.users, sample.items, sample.events)
    other = plugin.sample_data(8, 40)
    assert other.events != sample.events


def test_sample_data_has_popularity_skew_and_structure(plugin: DomainPlugin) -> None:
    data = plugin.sample_data(1, 120)
    weights = plugin.event_weights()
    counts = Counter(e["item_id"] for e in data.events if e["item_id"] and weights.get(e["type"], 0) > 0)
    top = sum(n for _, n in counts.most_common(max(1, len(counts) // 10)))
    # Zipf-like: the top 10% of items draw far more than 10% of the interactions.
    assert top / sum(counts.values()) > 0.2
    per_user = Counter(e["user_id"] for e in data.events)
    assert sum(n >= 5 for n in per_user.values()) >= 0.8 * len(data.users)
    # Timestamps are sorted, so histories can be read as sequences.
    stamps = [e["timestamp"] for e in data.events]
    assert stamps == sorted(stamps)


def _records(plugin: DomainPlugin, sample):  # type: ignore[no-untyped-def]
    items = {it["item_id"]: it["attributes"] for it in sample.items}
    user = max(sample.users, key=lambda u: sum(e["user_id"] == u["user_id"] for e in sample.events))
    history = [
        EventRecord(
            user_id=e["user_id"],
            item_id=e["item_id"],
            type=e["type"],
            timestamp=parse_datetime(e["timestamp"]),
            value=e["value"],
            context=e["context"],
        )
        for e in sample.events
        if e["user_id"] == user["user_id"]
    ]
    return items, UserRecord(user["user_id"], user["attributes"]), history


def _candidates(items: dict) -> list[Candidate]:
    return [
        Candidate(item_id=i, score=1.0 - n / 1000, attributes=a) for n, (i, a) in enumerate(items.items())
    ]


def test_rerank_explains_everything_and_never_returns_what_it_filters(plugin: DomainPlugin, sample) -> None:  # type: ignore[no-untyped-def]
    items, user, history = _records(plugin, sample)
    first = history[0].context if history else {}
    request = {"lat": first.get("lat", 48.137), "lon": first.get("lon", 11.575), "hour": 8}
    context = RerankContext(
        user=user,
        history=history,
        now=history[-1].timestamp,
        request=request,
        item_attributes={i: items[i] for i in {e.item_id for e in history if e.item_id}},
    )
    candidates = _candidates(items)
    base = {c.item_id: c.score for c in candidates}
    config = plugin.default_config()
    result = plugin.rerank(copy.deepcopy(candidates), context, config)
    kept = [c.item_id for c in result.candidates]
    gone = [c.item_id for c in result.removed]
    assert set(kept).isdisjoint(gone)
    assert sorted(kept + gone) == sorted(base)  # nothing lost, nothing invented
    assert [c.score for c in result.candidates] == sorted((c.score for c in result.candidates), reverse=True)
    for c in result.removed:
        filters = [a for a in c.adjustments if a.effect == "filter"]
        assert filters and all(a.rule.startswith(f"{plugin.id}.") and a.detail for a in filters)
    for c in result.candidates:
        assert all(a.effect != "filter" for a in c.adjustments)
        assert all(a.rule.startswith(f"{plugin.id}.") for a in c.adjustments)
        # The score is the model's score plus every recorded delta: nothing unexplained.
        assert c.score == pytest.approx(base[c.item_id] + sum(a.delta for a in c.adjustments))
    # Running the rules again on what was kept filters nothing more.
    again = plugin.rerank(
        [Candidate(c.item_id, base[c.item_id], c.attributes) for c in result.candidates], context, config
    )
    assert again.removed == []


@pytest.mark.parametrize("clock_free", [p for p in PLUGINS if not p.rerank_reads_clock], ids=lambda p: p.id)
def test_a_domain_that_declares_its_rules_clock_free_answers_the_same_at_any_time(
    clock_free: DomainPlugin,
) -> None:
    """Serving keeps such a domain's lists until an input changes (docs/serving.md, "Kept lists")."""
    plugin = clock_free
    sample = plugin.sample_data(7, 40)
    items, user, history = _records(plugin, sample)
    answers = []
    for later in (dt.timedelta(0), dt.timedelta(hours=7, minutes=13), dt.timedelta(days=400)):
        context = RerankContext(
            user=user,
            history=history,
            now=history[-1].timestamp + later,
            request={},
            item_attributes={i: items[i] for i in {e.item_id for e in history if e.item_id}},
        )
        result = plugin.rerank(_candidates(items), context, plugin.default_config())
        answers.append(
            [(c.item_id, c.score, c.adjustments) for c in result.candidates]
            + [c.item_id for c in result.removed]
        )
    assert answers[0] == answers[1] == answers[2]


def test_profile_features_are_json(plugin: DomainPlugin, sample) -> None:  # type: ignore[no-untyped-def]
    items, user, history = _records(plugin, sample)
    config = plugin.default_config()
    with_items = plugin.profile_features(history, user, config, item_attributes=items)
    without = plugin.profile_features(history, user, config)
    assert with_items and isinstance(with_items, dict)
    json.dumps(with_items)
    json.dumps(without)
    assert plugin.profile_features([], user, config) is not None


def test_risk_score_is_declared_or_absent(plugin: DomainPlugin, sample) -> None:  # type: ignore[no-untyped-def]
    _, user, history = _records(plugin, sample)
    if not plugin.has_risk_score():
        # A domain without a scorer keeps the base hook, which refuses loudly.
        with pytest.raises(NotImplementedError):
            plugin.risk_score(history, user, plugin.default_config())
        return
    result = plugin.risk_score(history, user, plugin.default_config())
    assert 0.0 <= result.score <= 1.0
    assert all(r.code and r.weight > 0 for r in result.reasons)


def test_sensitive_context_fields_are_sealed_opened_and_masked(
    plugin: DomainPlugin, sample, settings
) -> None:  # type: ignore[no-untyped-def]
    """What a domain marks sensitive in event contexts never reaches storage or a masked read in plaintext."""
    from cryptography.fernet import Fernet

    from platform_core.plugins.crypto import (
        REDACTED,
        SEALED_KEY,
        context_redact,
        context_seal,
        context_unseal,
        is_sealed,
    )

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    declared = {e.name: {f.name for f in e.context} for e in plugin.event_types}
    for type_, names in plugin.sensitive_event_types().items():
        assert names and set(names) <= declared[type_], (type_, names)
    for event in sample.events[:400]:
        context, type_ = event["context"] or {}, event["type"]
        sensitive = [n for n in plugin.sensitive_context_fields(type_) if context.get(n) is not None]
        stored = context_seal(plugin=plugin, event_type=type_, context=context)
        assert all(stored[n] == REDACTED for n in sensitive)
        assert is_sealed(stored[SEALED_KEY]) if sensitive else SEALED_KEY not in stored
        assert {k: v for k, v in stored.items() if k not in sensitive and k != SEALED_KEY} == {
            k: v for k, v in context.items() if k not in sensitive
        }
        assert context_unseal(context=stored) == context
        assert context_seal(plugin=plugin, event_type=type_, context=stored) == stored  # sealing twice: no-op
        masked = context_redact(plugin=plugin, event_type=type_, context=stored)
        assert SEALED_KEY not in masked and all(masked[n] == REDACTED for n in sensitive)
