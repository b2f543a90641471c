"""Cursor pagination for list endpoints: stable under inserts, no COUNT(*)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Newest rows first by primary key; ``?limit=`` up to 1000, ``?cursor=`` from ``next``."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000
