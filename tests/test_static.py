"""The dashboard's assets are served by the app itself (uvicorn serves no files; DEBUG is off)."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.parametrize("path", ["/static/css/site.css", "/static/js/htmx.min.js", "/static/admin/css/base.css"])
def test_it_serves_static_files_without_debug_or_collectstatic(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)  # type: ignore[attr-defined]
