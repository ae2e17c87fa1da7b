"""The ASGI entry point.

Completion requests (`/api/v1/chat/completions`, `/api/v1/completions`) go to the gateway's own
lean ASGI handler; everything else is Django. See docs/architecture.md for why the hot path
bypasses Django's request cycle.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")

from django.core.asgi import get_asgi_application

django_app = get_asgi_application()

from openrouter_site.scheduler import with_scheduler  # noqa: E402
from proxy.gateway.app import build_application  # noqa: E402
from proxy.gateway.http import with_body_deadline  # noqa: E402

# with_scheduler: the embedded default's periodic tasks start and stop with the server (no-op with beat).
application = with_scheduler(build_application(with_body_deadline(django_app)))  # type: ignore[arg-type]  # Django types its ASGI callable narrowly
