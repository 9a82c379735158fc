"""The shop as a one-file Django project.

    autodurable run -- python shop_django.py runserver 8003 --noreload

A POST /charges with an ``Idempotency-Key`` header charges once per key.
"""

from __future__ import annotations

import json
import sys

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path
from shop_core import charge_order

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only",
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF="shop_django",
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
    )


def create_charge(request: HttpRequest) -> JsonResponse:
    order = json.loads(request.body)
    response = JsonResponse(charge_order(str(order["order"]), int(order["amount"])))
    response["X-Shop-Order"] = str(order["order"])
    return response


urlpatterns = [path("charges", create_charge)]


if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
