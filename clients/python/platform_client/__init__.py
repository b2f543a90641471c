"""Client for the behaviour platform's REST API (``/api/v1``).

from platform_client import Client
client = Client("http://127.0.0.1:8000", api_key)
client.send_events([{"user_id": "alice", "item_id": "sku-1", "type": "view"}])
for item in client.recommendations("alice", k=5, explain=True).items:
    print(item.item_id, item.score, item.explanation)
"""

from platform_client.aio import AsyncClient
from platform_client.client import Client
from platform_client.errors import ApiError
from platform_client.models import (
    EraseResult,
    FeedbackResult,
    IngestResult,
    Job,
    PopularItem,
    RecommendationList,
    RecommendedItem,
    RiskScore,
    UpsertResult,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "EraseResult",
    "FeedbackResult",
    "IngestResult",
    "Job",
    "PopularItem",
    "RecommendationList",
    "RecommendedItem",
    "RiskScore",
    "UpsertResult",
]
