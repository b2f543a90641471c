"""Signals of the catalog app."""

from django.dispatch import Signal

# Sent after an end user was erased, for caches outside the database.
# kwargs: tenant, external_id, user_pk, deleted ({"app.Model": count}).
user_erased = Signal()
