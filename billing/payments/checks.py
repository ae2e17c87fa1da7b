"""Refuse to start with payment settings the scanner cannot work with (`manage.py check`, runserver, migrate).

The scan itself refuses them too (the error lands on the chain's cursor, shown in the admin), for
processes such as Celery workers that do not run system checks.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from billing.payments.chain import crypto_settings_problems


@register("payments")
def payment_settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [Error(problem, id="payments.E001") for problem in crypto_settings_problems()]
