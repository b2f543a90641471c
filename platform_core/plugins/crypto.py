"""Encryption at rest of attributes a domain marks ``sensitive`` (Fernet / MultiFernet).

Keys come from ``settings.FIELD_ENCRYPTION_KEYS`` (newest first): values are
encrypted with the first key and decrypted with any of them, so a key is
rotated by putting a new one in front and re-sealing (``attributes_rotate``)
before the old one is dropped. With no keys configured, one key is generated
once into ``VAR_DIR`` (development only).

A sealed value is a string ``"fernet:v1:<token>"`` holding the JSON of the
plaintext value, so unsealing is safe on data that was never sealed and
sealing twice does nothing. Nothing here logs a value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from domains.base import DomainPlugin

PREFIX = "fernet:v1:"
REDACTED = "•••"
_cache: dict[tuple[str, ...], MultiFernet] = {}


class SealError(Exception):
    """A sealed value could not be decrypted with any configured key."""


def _dev_key_file() -> Path:
    return Path(settings.VAR_DIR) / "field_encryption_key"


def encryption_keys() -> tuple[str, ...]:
    """The configured keys, newest first; a development key from VAR_DIR if none."""
    keys = tuple(k.strip() for k in getattr(settings, "FIELD_ENCRYPTION_KEYS", []) if k and k.strip())
    if keys:
        return keys
    path = _dev_key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return (path.read_text().strip(),)


def _fernet() -> MultiFernet:
    keys = encryption_keys()
    if keys not in _cache:
        try:
            _cache[keys] = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS: every key must be 32 url-safe base64-encoded bytes "
                "(generate one with cryptography.fernet.Fernet.generate_key())"
            ) from exc
    return _cache[keys]


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def value_seal(value: Any) -> str:
    """Any JSON value → a sealed string (a sealed value is returned as it is)."""
    if is_sealed(value):
        return value
    token = _fernet().encrypt(json.dumps(value, separators=(",", ":")).encode())
    return PREFIX + token.decode()


def value_unseal(value: Any, *, field: str = "") -> Any:
    """A sealed string → its JSON value; anything else is returned unchanged."""
    if not is_sealed(value):
        return value
    try:
        return json.loads(_fernet().decrypt(value[len(PREFIX) :].encode()))
    except InvalidToken as exc:
        raise SealError(
            f"attribute {field or '?'}: no configured key decrypts it "
            "(was a key removed from FIELD_ENCRYPTION_KEYS before re-sealing?)"
        ) from exc


def attributes_seal(
    *, plugin: DomainPlugin, kind: Literal["user", "item"], attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """Validated plaintext attributes → what is stored (sensitive values encrypted)."""
    out = dict(attributes)
    for name in plugin.sensitive_fields(kind):
        if out.get(name) is not None:
            out[name] = value_seal(out[name])
    return out


def attributes_unseal(
    *, plugin: DomainPlugin, kind: Literal["user", "item"], attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """Stored attributes → plaintext (for hooks and the API's owner-tenant reads)."""
    out = dict(attributes)
    for name in plugin.sensitive_fields(kind):
        if name in out:
            out[name] = value_unseal(out[name], field=name)
    return out


def features_seal(*, plugin: DomainPlugin, features: Mapping[str, Any]) -> dict[str, Any]:
    """Profile features → what is stored: the plugin's sensitive feature keys encrypted."""
    out = dict(features)
    for name in plugin.sensitive_profile_features:
        if out.get(name) is not None:
            out[name] = value_seal(out[name])
    return out


def features_unseal(*, plugin: DomainPlugin, features: Mapping[str, Any]) -> dict[str, Any]:
    """Stored profile features → plaintext, for the owner tenant's API reads."""
    out = dict(features)
    for name in plugin.sensitive_profile_features:
        if name in out:
            out[name] = value_unseal(out[name], field=name)
    return out


def attributes_redact(
    *, plugin: DomainPlugin, kind: Literal["user", "item"], attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """Attributes for display in lists and logs: sensitive values replaced by a mask."""
    sensitive = set(plugin.sensitive_fields(kind))
    out = {}
    for name, value in attributes.items():
        # Anything sealed is masked too, even if the schema no longer marks it.
        out[name] = REDACTED if (name in sensitive or is_sealed(value)) and value is not None else value
    return out


def value_rotate(value: Any, *, field: str = "") -> str:
    """A sealed value → sealed again with the newest key; a plaintext value → sealed."""
    if not is_sealed(value):
        return value_seal(value)
    try:
        return PREFIX + _fernet().rotate(value[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise SealError(f"attribute {field or '?'}: no configured key decrypts it") from exc


def attributes_rotate(
    *, plugin: DomainPlugin, kind: Literal["user", "item"], attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """Re-encrypt sealed values with the newest key (and seal any left in plaintext)."""
    out = dict(attributes)
    for name in plugin.sensitive_fields(kind):
        if out.get(name) is not None:
            out[name] = value_rotate(out[name], field=name)
    return out


# --------------------------------------------------------------------------- event contexts
# An event's sensitive context values travel in ONE token under SEALED_KEY, and each of their
# fields keeps its name with the mask as value: {"system": "icd10", "code": "•••",
# "condition": "•••", "_sealed": "fernet:v1:…"}. One token per event instead of one per field:
# a Fernet token costs ~20 µs to make or open, and a diagnosis has two sensitive fields, a lab
# result three. Stored contexts are masked by construction (a masked read drops the token).
# Events of types without sensitive fields are not touched.
SEALED_KEY = "_sealed"


def context_seal(*, plugin: DomainPlugin, event_type: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """A validated plaintext event context → what is stored (sensitive values in one token)."""
    names = plugin.sensitive_context_fields(event_type)
    secret = {n: context[n] for n in names if context.get(n) is not None and context[n] != REDACTED}
    if not secret:
        return dict(context)
    out = {**context, **dict.fromkeys(secret, REDACTED)}
    if SEALED_KEY in context:  # re-sealing: keep what the existing token holds
        secret = {**context_unseal(context={SEALED_KEY: context[SEALED_KEY]}), **secret}
    out[SEALED_KEY] = value_seal(secret)
    return out


def context_unseal(*, context: Mapping[str, Any]) -> dict[str, Any]:
    """A stored event context → plaintext (for hooks, and for readers allowed to see it).

    Whatever is sealed is opened, even if the schema no longer marks it sensitive.
    """
    if SEALED_KEY not in context:
        return dict(context)
    out = {k: v for k, v in context.items() if k != SEALED_KEY}
    out.update(value_unseal(context[SEALED_KEY], field=f"context.{SEALED_KEY}"))
    return out


def context_redact(*, plugin: DomainPlugin, event_type: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """A stored event context for display without the permission: sensitive values masked."""
    sensitive = set(plugin.sensitive_context_fields(event_type))
    return {
        name: REDACTED if name in sensitive and value is not None else value
        for name, value in context.items()
        if name != SEALED_KEY
    }


def context_rotate(*, plugin: DomainPlugin, event_type: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Re-encrypt a stored context's token with the newest key; seal sensitive values left in plaintext

    (events stored before their field was marked sensitive).
    """
    out = dict(context)
    if SEALED_KEY in out:
        out[SEALED_KEY] = value_rotate(out[SEALED_KEY], field=f"context.{SEALED_KEY}")
    return context_seal(plugin=plugin, event_type=event_type, context=out)
