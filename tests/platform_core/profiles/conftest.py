from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    settings.ARTIFACT_CACHE_DIR = tmp_path / "artifact-cache"
    return tmp_path
