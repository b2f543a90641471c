"""The web server's entry point (``gunicorn platform_core.wsgi:application``)."""

import os
import sys

from django.core.wsgi import get_wsgi_application

# The web tier makes no outgoing HTTP calls. DRF imports `requests` whenever it is installed (it is,
# for TensorFlow in the same environment) only to offer a test client; keeping it out, with
# urllib3 and charset_normalizer, saves about 5 MB in each web worker (docs/serving.md, "Memory").
sys.modules.setdefault("requests", None)  # type: ignore[arg-type]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")
application = get_wsgi_application()
