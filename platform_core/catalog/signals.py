"""Signals of the catalog app."""

from django.dispatch import Signal

# Sent inside the erasure's transaction, before the user's rows are deleted, so that upper apps
# can read what they need about the user and remove what the cascade does not reach.
# kwargs: tenant, user (the EndUser, still stored). A receiver returns an ``ErasureShare``
# (platform_core.catalog.services) or None; its counts and model versions go on the receipt.
user_erasing = Signal()

# Sent after an end user was erased, for caches outside the database.
# kwargs: tenant, external_id, user_pk, deleted ({"app.Model": count}), receipt_id.
user_erased = Signal()
