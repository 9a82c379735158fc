"""The shop as a Flask application.

    autodurable run -- flask --app shop_flask run --port 8002

A POST /charges with an ``Idempotency-Key`` header charges once per key.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from shop_core import charge_order

app = Flask(__name__)


@app.post("/charges")
def create_charge() -> Response:
    order = request.get_json()
    response = jsonify(charge_order(str(order["order"]), int(order["amount"])))
    response.headers["X-Shop-Order"] = str(order["order"])
    return response
