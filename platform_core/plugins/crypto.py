"""Encryption at rest of attributes a domain marks ``sensitive``.

SEAM (owned by the domains issue): identity functions for now; the domains
issue implements Fernet/MultiFernet here without changing the signatures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from domains.base import DomainPlugin


def attributes_seal(*, plugin: DomainPlugin, kind: Literal["user", "item"], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Validated plaintext attributes → what is stored (sensitive values encrypted)."""
    return dict(attributes)


def attributes_unseal(*, plugin: DomainPlugin, kind: Literal["user", "item"], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Stored attributes → plaintext (for hooks and the API's owner-tenant reads)."""
    return dict(attributes)
