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

from proxy.gateway.app import build_application  # noqa: E402

application = build_application(django_app)  # type: ignore[arg-type]  # Django types its ASGI callable narrowly
