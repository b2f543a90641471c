"""Segments: writes (create, edit, compute) and reads (list, resolve) — docs/analytics.md, "Segments".

Membership is computed set-based: a rule segment is one ``INSERT … SELECT``
(``segment_rules.rule_select``); a cluster segment runs k-means over the
active model's stored profile embeddings in NumPy and writes the members
with one bulk insert, then describes each cluster by the top values of an
item attribute over its members' events, in one grouped query.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from platform_core.analytics import validation as v
from platform_core.analytics.kmeans import kmeans_labels
from platform_core.analytics.models import Segment, SegmentKind, SegmentMember
from platform_core.analytics.segment_rules import definition_check, rule_select
from platform_core.analytics.services import analytics_forget
from platform_core.analytics.sql import TENANT, analytics_sql_insert, analytics_sql_rows, dialect
from platform_core.common.access import object_get_for_tenant
from platform_core.jobs.selectors import model_version_active
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.profiles.selectors import profile_list
from platform_core.serving.segments import SegmentRef
from platform_core.tenancy.models import Tenant

TOP_VALUES = 3  # values describing a cluster
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_REF = re.compile(r"^(?P<seg>[^:]+?)(?::(?P<cluster>\d{1,4}))?$")


# ============================================================== reads
def segment_list(*, tenant: Tenant) -> QuerySet[Segment]:
    return Segment.objects.for_tenant(tenant).order_by("name")


def segment_get_for_tenant(*, tenant: Tenant, segment_id: int) -> Segment:
    return object_get_for_tenant(model=Segment, tenant=tenant, label="such segment", pk=segment_id)


def segment_ref_resolve(*, tenant: Tenant, ref: Any, field: str) -> SegmentRef:
    """``name``, ``id``, or ``name:n`` / ``id:n`` (cluster n of a cluster segment) → the segment.

    Raises:
        ValidationFailed: a 400 naming ``field`` when the tenant has no such segment or cluster.
    """
    # A NUL would reach PostgreSQL as an error (a 500); no segment name holds one.
    m = _REF.match(ref) if isinstance(ref, str) and len(ref) <= 80 and "\x00" not in ref else None
    seg = None
    if m is not None:
        key = m["seg"]
        qs = Segment.objects.for_tenant(tenant)
        seg = (
            qs.filter(pk=int(key)).first() if key.isdigit() and len(key) < 18 else qs.filter(name=key).first()
        )
    if seg is None:
        raise v.fail(field, f"{ref!r} is not a segment of this tenant (by name or id)")
    cluster = int(m["cluster"]) if m["cluster"] is not None else None
    if cluster is not None and (seg.kind != SegmentKind.CLUSTER or cluster >= len(seg.clusters or [])):
        raise v.fail(field, f"segment {seg.name!r} has no cluster {cluster}")
    members = SegmentMember.objects.for_tenant(tenant).filter(segment=seg)
    if cluster is not None:
        members = members.filter(cluster=cluster)
    return SegmentRef(
        segment_id=seg.pk,
        cluster=cluster,
        label=seg.name if cluster is None else f"{seg.name}:{cluster}",
        version=f"{seg.pk}:{cluster}:{seg.computed_at.isoformat() if seg.computed_at else '-'}",
        event_lookup={"user_id__in": members.values("user_id")},
    )


class SegmentDirectory:
    """What serving asks of segments (``serving.segments.SegmentDirectory``), registered in ``ready()``."""

    def resolve(self, *, tenant: Tenant, ref: str, field: str) -> SegmentRef:
        return segment_ref_resolve(tenant=tenant, ref=ref, field=field)

    def is_member(self, *, tenant: Tenant, segment: SegmentRef, user_external_id: str) -> bool:
        qs = SegmentMember.objects.for_tenant(tenant).filter(
            segment_id=segment.segment_id, user__external_id=user_external_id
        )
        if segment.cluster is not None:
            qs = qs.filter(cluster=segment.cluster)
        return qs.exists()


def segment_out(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.pk,
        "name": segment.name,
        "kind": segment.kind,
        "definition": segment.definition,
        "size": segment.size,
        "computed_at": segment.computed_at,
        "clusters": segment.clusters or [],
    }


# ============================================================== writes
def segment_input_check(
    *, tenant: Tenant, data: dict[str, Any], segment: Segment | None = None
) -> dict[str, Any]:
    """Name, kind and definition checked against the tenant's domain (the API and the console)."""
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name.isdigit():
        raise v.fail(
            "name",
            "must be 1-64 lowercase letters, digits, '-' or '_', start with a letter or digit, not only digits",
        )
    clash = Segment.objects.for_tenant(tenant).filter(name=name)
    if segment is not None:
        clash = clash.exclude(pk=segment.pk)
    if clash.exists():
        raise v.fail("name", f"a segment named {name!r} exists already")
    kind = data.get("kind") or SegmentKind.RULE
    definition = definition_check(
        plugin=tenant_plugin_get(tenant=tenant), kind=kind, definition=data.get("definition")
    )
    return {"name": name, "kind": kind, "definition": definition}


def segment_create(*, tenant: Tenant, data: dict[str, Any]) -> Segment:
    clean = segment_input_check(tenant=tenant, data=data)
    try:
        with transaction.atomic():
            return Segment.objects.for_tenant(tenant).create(tenant=tenant, **clean)
    except IntegrityError:  # a concurrent create of the same name
        raise v.fail("name", f"a segment named {clean['name']!r} exists already") from None


def segment_update(*, segment: Segment, data: dict[str, Any]) -> Segment:
    """Replace name, kind and definition; the membership stays until the next computation."""
    clean = segment_input_check(tenant=segment.tenant, data=data, segment=segment)
    changed = clean["kind"] != segment.kind or clean["definition"] != segment.definition
    for key, value in clean.items():
        setattr(segment, key, value)
    fields = ["name", "kind", "definition", "updated_at"]
    if changed and segment.kind == SegmentKind.RULE:
        segment.clusters = []
        fields.append("clusters")
    try:
        with transaction.atomic():
            segment.save(update_fields=fields)
    except IntegrityError:
        raise v.fail("name", f"a segment named {clean['name']!r} exists already") from None
    return segment


def segment_delete(*, segment: Segment) -> None:
    tenant_id = segment.tenant_id
    segment.delete()
    analytics_forget(tenant_id=tenant_id)  # breakdowns by segment change


def segment_compute_request(*, segment: Segment) -> None:
    """Recompute in the worker (queue ``default``) once the caller's transaction commits."""
    from platform_core.analytics.tasks import segment_compute_task

    segment_id = segment.pk
    transaction.on_commit(lambda: segment_compute_task.delay(segment_id))


def segments_refresh_due(*, max_age: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Beat: ask for a computation of every segment not computed for ``max_age``; the count asked."""
    now = now or timezone.now()
    # Crosses tenants on purpose: the schedule serves all of them; each task enters its own tenant.
    due = Segment.unscoped.filter(computed_at__isnull=True) | Segment.unscoped.filter(
        computed_at__lt=now - max_age
    )
    ids = list(due.values_list("pk", flat=True))
    for segment in Segment.unscoped.filter(pk__in=ids):
        segment_compute_request(segment=segment)
    return len(ids)


def segment_compute(*, tenant: Tenant, segment_id: int, now: dt.datetime | None = None) -> Segment:
    """Recompute the segment's members, size and (clusters) descriptions, in one transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        # Locked: two computations of one segment would insert the same pairs.
        segment = Segment.objects.for_tenant(tenant).select_for_update().get(pk=segment_id)
        SegmentMember.objects.for_tenant(tenant).filter(segment=segment).delete()
        if segment.kind == SegmentKind.CLUSTER:
            segment.size, segment.clusters = _clusters_write(tenant=tenant, segment=segment)
        else:
            sql, params = rule_select(
                plugin=tenant_plugin_get(tenant=tenant), definition=segment.definition, now=now
            )
            segment.size = analytics_sql_insert(
                tenant=tenant,
                table="member",
                columns=("user_id", "segment_id"),
                select=sql,
                params={**params, "segment": segment.pk},
            )
        segment.computed_at = now
        segment.save(update_fields=["size", "clusters", "computed_at"])
    analytics_forget(tenant_id=tenant.pk)
    return segment


def _clusters_write(*, tenant: Tenant, segment: Segment) -> tuple[int, list[dict[str, Any]]]:
    """k-means over the active model's stored user embeddings; (members, cluster descriptions)."""
    definition = definition_check(
        plugin=tenant_plugin_get(tenant=tenant), kind="cluster", definition=segment.definition
    )
    version = model_version_active(tenant=tenant)
    rows = (
        list(
            profile_list(tenant=tenant)
            .filter(model_version=version, embedding__isnull=False)
            .order_by("user_id")
            .values_list("user_id", "embedding")
        )
        if version is not None
        else []
    )
    if len(rows) < definition["k"]:
        return 0, []  # too few embedded users to form k clusters (no model yet, or a new tenant)
    vectors = np.stack([np.frombuffer(bytes(e), dtype="<f4") for _, e in rows])
    labels = kmeans_labels(vectors, k=definition["k"], seed=definition["seed"])
    SegmentMember.objects.for_tenant(tenant).bulk_create(
        [
            SegmentMember(tenant=tenant, segment=segment, user_id=user_id, cluster=int(label))
            for (user_id, _), label in zip(rows, labels, strict=True)
        ],
        batch_size=5000,
    )
    sizes = np.bincount(labels, minlength=definition["k"])
    tops = _top_values(tenant=tenant, segment=segment, attribute=definition["describe_by"])
    clusters = [
        {"cluster": c, "size": int(sizes[c]), "top_values": tops.get(c, [])} for c in range(definition["k"])
    ]
    return len(rows), clusters


def _top_values(*, tenant: Tenant, segment: Segment, attribute: str) -> dict[int, list[dict[str, Any]]]:
    """Per cluster: the most frequent values of ``attribute`` over the items of its members' events."""
    label = dialect().json_text("i.attributes", "%(attr)s")
    sql = (
        f"SELECT m.cluster, {label} AS v, COUNT(*) FROM {{member}} m "
        f"JOIN {{event}} e ON e.user_id = m.user_id AND e.tenant_id = {TENANT} "
        f"JOIN {{item}} i ON i.id = e.item_id AND i.tenant_id = {TENANT} "
        f"WHERE m.tenant_id = {TENANT} AND m.segment_id = %(segment)s AND {label} IS NOT NULL "
        f"GROUP BY m.cluster, {label}"
    )
    rows = analytics_sql_rows(tenant=tenant, sql=sql, params={"attr": attribute, "segment": segment.pk})
    totals: dict[int, int] = {}
    for c, _, n in rows:
        totals[int(c)] = totals.get(int(c), 0) + int(n)
    out: dict[int, list[dict[str, Any]]] = {}
    for c, value, n in sorted(rows, key=lambda r: (int(r[0]), -int(r[2]), str(r[1]))):
        top = out.setdefault(int(c), [])
        if len(top) < TOP_VALUES:
            top.append({"value": value, "events": int(n), "share": round(int(n) / totals[int(c)], 4)})
    return out
