"""The shop as a FastAPI application.

    autodurable run -- uvicorn shop_fastapi:app --port 8001

A POST /charges with an ``Idempotency-Key`` header charges once per key.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from pydantic import BaseModel
from shop_core import charge_order

app = FastAPI()


class Order(BaseModel):
    order: str
    amount: int


@app.post("/charges")
def create_charge(order: Order, response: Response) -> dict[str, object]:
    response.headers["X-Shop-Order"] = order.order
    return charge_order(order.order, order.amount)
