"""Signals of the events app."""

from django.dispatch import Signal

#: Sent after an ingestion batch committed new events: ``tenant_id``, ``user_pks``, ``ts_min``,
#: ``ts_max`` (the batch's earliest and latest event time; keyword arguments).
events_committed = Signal()
