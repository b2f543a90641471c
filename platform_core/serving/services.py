"""Writes of the serving app: feedback, online counters, and the signed recommendation id.

A ``recommendation_id`` is a signed token holding the tenant, model version,
user, items and time of a served list. Serving writes nothing per request;
feedback verifies the token instead of looking a row up. The token is
``base64url(JSON payload) "." base64url(keyed BLAKE2b-128 of it)``, the key
derived from ``SECRET_KEY`` (``SECRET_KEY_FALLBACKS`` verify too). A token has
exactly one valid spelling: unpadded urlsafe base64 only, and the MAC is
compared as the text the server would write (a loose base64 decode let the
last character's spare bits, padding or stray characters vary, so one list
verified under several ids and collected a click under each).
``django.core.signing`` with compression cost ≈ 0.1 ms a recommendation
(key derivation, zlib, two base64 passes), this ≈ 5 µs.
Items shown are counted in process and flushed every
``SERVING_STATS_FLUSH_SECONDS`` (one UPDATE per version per flush).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from platform_core.catalog.models import EndUser
from platform_core.common.errors import NotFound, ValidationFailed
from platform_core.serving.errors import ServingError
from platform_core.serving.models import FeedbackAction, ModelVersionServingStats, RecommendationFeedback
from platform_core.tenancy.models import Tenant

_SALT = b"serving.recommendation.v2"


# --------------------------------------------------------------------------- the token
@dataclass(frozen=True)
class ServedList:
    """What a recommendation_id says was served."""

    tenant_id: int
    version_id: int | None
    user_id: str  # "" for a similar-items list requested without a user
    item_ids: list[str]
    served_at: datetime
    source_item_id: str = ""  # the item of a similar-items list; "" for recommendations


def _token_mac(secret: str, body: bytes) -> bytes:
    key = hashlib.blake2b(_SALT + secret.encode(), digest_size=32).digest()
    return hashlib.blake2b(body, key=key, digest_size=16).digest()


def recommendation_token_issue(
    *,
    tenant: Tenant,
    version_id: int | None,
    user_id: str,
    item_ids: Sequence[str],
    source_item_id: str = "",
) -> str:
    """Sign a served list; ``source_item_id`` names the item of a similar-items list."""
    payload = {"t": tenant.pk, "v": version_id, "u": user_id, "i": list(item_ids), "ts": int(time.time())}
    if source_item_id:
        payload["s"] = source_item_id
    body = urlsafe_base64_encode(orjson.dumps(payload))
    return f"{body}.{urlsafe_base64_encode(_token_mac(settings.SECRET_KEY, body.encode('ascii')))}"


_B64URL_UNPADDED = re.compile(r"[A-Za-z0-9_-]+")


def _token_payload(token: str) -> Any:
    """The payload of a token signed with the secret key (or a fallback), else None."""
    body, dot, mac_text = token.partition(".")
    if not dot or not _B64URL_UNPADDED.fullmatch(body) or not _B64URL_UNPADDED.fullmatch(mac_text):
        return None
    raw_body = body.encode("ascii")
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    # Text against text: only the spelling the server writes verifies (the body is covered
    # by the MAC as text already).
    if not any(
        hmac.compare_digest(mac_text, urlsafe_base64_encode(_token_mac(secret, raw_body)))
        for secret in secrets
    ):
        return None
    try:
        return orjson.loads(urlsafe_base64_decode(body))
    except ValueError:  # orjson.JSONDecodeError is one
        return None


def recommendation_token_read(*, tenant: Tenant, token: Any) -> ServedList:
    """Verify a recommendation_id of ``tenant``'s; a forged, expired or other tenant's id reads alike."""
    invalid = ValidationFailed(
        "recommendation_id is not a valid, unexpired recommendation of this tenant.",
        code=ServingError.INVALID_RECOMMENDATION,
        fields={"recommendation_id": ["is not a valid, unexpired recommendation of this tenant"]},
    )
    if not isinstance(token, str) or not token:
        raise invalid
    data = _token_payload(token)
    if (
        not isinstance(data, dict)
        or data.get("t") != tenant.pk
        or not isinstance(data.get("ts"), int)
        or not isinstance(data.get("i"), list)
        or time.time() - data["ts"] > settings.SERVING_RECOMMENDATION_MAX_AGE
    ):
        raise invalid
    return ServedList(
        tenant_id=data["t"],
        version_id=data.get("v"),
        user_id=str(data["u"]),
        item_ids=[str(i) for i in data["i"]],
        served_at=datetime.fromtimestamp(int(data["ts"]), tz=UTC),
        source_item_id=str(data.get("s") or ""),
    )


# --------------------------------------------------------------------------- counters
_shown: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])  # (tenant, version) → [lists, items]
_shown_lock = threading.Lock()
_last_flush = [time.monotonic()]


def recommendation_served(*, tenant_id: int, version_id: int | None, n_items: int) -> None:
    """Count a served list (in memory); flush now and then."""
    if version_id is None:
        return
    with _shown_lock:
        counts = _shown[(tenant_id, version_id)]
        counts[0] += 1
        counts[1] += n_items
        due = time.monotonic() - _last_flush[0] >= settings.SERVING_STATS_FLUSH_SECONDS
    if due:
        serving_stats_flush()


def _stats_row(tenant_id: int, version_id: int) -> None:
    try:
        with transaction.atomic():
            ModelVersionServingStats.unscoped.get_or_create(tenant_id=tenant_id, model_version_id=version_id)
    except IntegrityError:  # raced with another process, or the version was deleted
        pass


def serving_stats_flush() -> None:
    """Write the in-memory items-shown counters to the database."""
    with _shown_lock:
        pending = dict(_shown)
        _shown.clear()
        _last_flush[0] = time.monotonic()
    for (tenant_id, version_id), (lists, items) in pending.items():
        _stats_row(tenant_id, version_id)
        # unscoped: the counters are keyed by ids taken from this tenant's own requests.
        ModelVersionServingStats.unscoped.filter(tenant_id=tenant_id, model_version_id=version_id).update(
            lists_served=F("lists_served") + lists, items_shown=F("items_shown") + items
        )


# --------------------------------------------------------------------------- feedback
@dataclass(frozen=True)
class FeedbackResult:
    feedback: RecommendationFeedback
    created: bool


_COUNTER = {
    FeedbackAction.CLICK: "clicks",
    FeedbackAction.CONVERT: "conversions",
    FeedbackAction.DISMISS: "dismissals",
}


def feedback_record(*, tenant: Tenant, recommendation_id: str, item_id: str, action: str) -> FeedbackResult:
    """Record a click, conversion or dismissal of one item of a served list (idempotent).

    Raises:
        ValidationFailed: bad token, an item not in that list, or an unknown action.
        NotFound: the user of that list no longer exists (erased).
    """
    if action not in FeedbackAction.values:
        raise ValidationFailed(
            f"action must be one of {FeedbackAction.values}.",
            fields={"action": [f"must be one of {FeedbackAction.values}"]},
        )
    served = recommendation_token_read(tenant=tenant, token=recommendation_id)
    if item_id not in served.item_ids:
        raise ValidationFailed(
            f"item_id {item_id!r} was not in this recommendation.",
            code=ServingError.INVALID_PARAMETER,
            fields={"item_id": ["was not in this recommendation"]},
        )
    user = None
    if served.user_id or not served.source_item_id:
        # A similar-items list asked for without a user is anonymous: its feedback has no user.
        user = EndUser.objects.for_tenant(tenant).filter(external_id=served.user_id).first()
        if user is None:
            raise NotFound(f"No user {served.user_id!r}.")
    version_id = served.version_id
    if version_id is not None:
        from platform_core.jobs.models import ModelVersion

        if not ModelVersion.objects.for_tenant(tenant).filter(pk=version_id).exists():
            version_id = None
    key = hashlib.sha256(recommendation_id.encode()).hexdigest()
    with transaction.atomic():
        feedback, created = RecommendationFeedback.unscoped.get_or_create(
            tenant=tenant,
            recommendation_key=key,
            item_external_id=item_id,
            action=action,
            defaults={
                "user": user,
                "model_version_id": version_id,
                "rank": served.item_ids.index(item_id) + 1,
                "served_at": served.served_at,
                "source_item_external_id": served.source_item_id,
            },
        )
        if created and version_id is not None:
            _stats_row(tenant.pk, version_id)
            ModelVersionServingStats.objects.for_tenant(tenant).filter(model_version_id=version_id).update(
                **{_COUNTER[FeedbackAction(action)]: F(_COUNTER[FeedbackAction(action)]) + 1}
            )
    return FeedbackResult(feedback=feedback, created=created)
