"""Signals of the plugins app."""

from django.dispatch import Signal

# Sent once per tenant by ``rotate_field_keys`` after the attributes were re-encrypted: apps
# that store other sealed values (events: sensitive context fields) re-encrypt theirs.
# kwargs: tenant. A receiver returns the number of rows it rewrote.
field_keys_rotating = Signal()
