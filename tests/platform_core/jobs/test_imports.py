"""The web tier and the worker's parent process never import TensorFlow; only a training does."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys, django
django.setup()
import platform_core.jobs.admin, platform_core.jobs.apis, platform_core.jobs.tasks, platform_core.jobs.training
import platform_core.profiles.services, platform_core.profiles.tasks, platform_core.urls
from platform_core.celery import app
app.loader.import_default_modules()
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""


def _printed(code: str) -> list[str]:
    """What ``code`` prints in a fresh interpreter (nothing imported before it)."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "platform_core.settings"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_importing_the_jobs_app_and_tasks_leaves_tensorflow_out():
    assert _printed(CODE)[-2:] == ["False", "False"]


WEB = """
import sys
from platform_core.wsgi import application
from django.test import Client
from django.urls import get_resolver
import platform_core.urls, django.contrib.admin
assert Client().get("/healthz").status_code == 200
assert Client().get("/api/docs/").status_code == 200
schema = Client().get("/api/schema/")
assert schema.status_code == 200 and b"/recommendations" in schema.content, schema.status_code
assert len(get_resolver().reverse_dict) > 10
print("tensorflow" in sys.modules, sys.modules.get("requests") is None, "urllib3" in sys.modules)
"""


def test_the_web_server_loads_without_tensorflow_or_an_http_client():
    assert _printed(WEB)[-3:] == ["False", "True", "False"]
