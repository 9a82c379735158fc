"""Warehouse stock levels, purchase orders and the supplier catalogue sync."""

from __future__ import annotations

import csv
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import click
import requests
from flask import Blueprint, Flask, abort, current_app, g, jsonify, request
from flask.cli import with_appcontext
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

db = SQLAlchemy()
inventory = Blueprint("inventory", __name__, url_prefix="/inventory")

SKU_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
REORDER_HEADROOM = Decimal("1.5")
MAX_ADJUSTMENT = 10_000


class Product(db.Model):
    __tablename__ = "products"

    id = db.Column(db.Integer, primary_key=True)
    sku = db.Column(db.String(32), unique=True, nullable=False)
    name = db.Column(db.String(200), nullable=False)
    supplier_code = db.Column(db.String(64), index=True)
    unit_cost = db.Column(db.Numeric(10, 2), nullable=False)
    on_hand = db.Column(db.Integer, nullable=False, default=0)
    reorder_point = db.Column(db.Integer, nullable=False, default=0)
    updated_at = db.Column(db.DateTime)


class StockMovement(db.Model):
    __tablename__ = "stock_movements"

    id = db.Column(db.Integer, primary_key=True)
    product_id = db.Column(db.Integer, db.ForeignKey("products.id"), nullable=False)
    delta = db.Column(db.Integer, nullable=False)
    reason = db.Column(db.String(120), nullable=False)
    reference = db.Column(db.String(64))
    created_at = db.Column(db.DateTime, nullable=False)


class PurchaseOrder(db.Model):
    __tablename__ = "purchase_orders"

    id = db.Column(db.Integer, primary_key=True)
    reference = db.Column(db.String(32), unique=True, nullable=False)
    supplier_code = db.Column(db.String(64), nullable=False)
    status = db.Column(db.String(16), nullable=False, default="draft")
    external_id = db.Column(db.String(64))
    created_at = db.Column(db.DateTime, nullable=False)
    submitted_at = db.Column(db.DateTime)
    lines = db.relationship("PurchaseOrderLine", back_populates="order")


class PurchaseOrderLine(db.Model):
    __tablename__ = "purchase_order_lines"

    id = db.Column(db.Integer, primary_key=True)
    order_id = db.Column(db.Integer, db.ForeignKey("purchase_orders.id"), nullable=False)
    product_id = db.Column(db.Integer, db.ForeignKey("products.id"), nullable=False)
    quantity = db.Column(db.Integer, nullable=False)
    unit_cost = db.Column(db.Numeric(10, 2), nullable=False)
    order = db.relationship("PurchaseOrder", back_populates="lines")


@dataclass(frozen=True)
class StockLine:
    sku: str
    on_hand: int
    value: Decimal


# -- validation and serialisation ---------------------------------------------


def normalise_sku(raw: str) -> str:  # expect: plain
    sku = raw.strip().upper().replace(" ", "-")
    if not sku or not set(sku) <= SKU_ALPHABET:
        raise ValueError(f"invalid SKU: {raw!r}")
    return sku


def parse_cost(value: str | int | float) -> Decimal:  # expect: plain
    try:
        cost = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValueError(f"invalid cost: {value!r}") from None
    if cost < 0:
        raise ValueError("cost cannot be negative")
    return cost


def validate_adjustment(payload: dict[str, Any]) -> tuple[int, str]:  # expect: plain
    reason = str(payload.get("reason", "")).strip()
    if not reason:
        raise ValueError("an adjustment needs a reason")
    try:
        delta = int(payload.get("delta"))
    except (TypeError, ValueError):
        raise ValueError(f"delta must be an integer, got {payload.get('delta')!r}") from None
    if delta == 0 or abs(delta) > MAX_ADJUSTMENT:
        raise ValueError(f"delta {delta} is outside the adjustment limit")
    return delta, reason[:120]


def product_to_dict(product: Product) -> dict[str, Any]:  # expect: plain
    return {
        "sku": product.sku,
        "name": product.name,
        "supplier": product.supplier_code,
        "unit_cost": str(product.unit_cost),
        "on_hand": product.on_hand,
        "reorder_point": product.reorder_point,
        "updated_at": product.updated_at.isoformat() if product.updated_at else None,
    }


def reorder_quantity(product: Product) -> int:  # expect: plain
    if product.on_hand > product.reorder_point:
        return 0
    target = int(product.reorder_point * REORDER_HEADROOM)
    return max(target - product.on_hand, 1)


def low_stock_query():  # expect: plain
    return (
        select(Product)
        .where(Product.on_hand <= Product.reorder_point)
        .order_by(Product.supplier_code, Product.sku)
    )


def products_for_supplier(supplier_code: str):  # expect: plain
    return Product.query.filter_by(supplier_code=supplier_code).order_by(Product.sku)


# -- queries -------------------------------------------------------------------


def find_product(sku: str) -> Product | None:  # expect: step
    return Product.query.filter_by(sku=normalise_sku(sku)).first()


def low_stock_products() -> list[Product]:  # expect: step
    return list(db.session.scalars(low_stock_query()))


def archive_movements(session, before: datetime) -> int:  # expect: step
    result = session.execute(delete(StockMovement).where(StockMovement.created_at < before))
    session.commit()
    return result.rowcount


class StockService:
    def __init__(self, session: Session) -> None:  # expect: plain
        self.session = session

    def stage_movement(  # expect: plain
        self, product: Product, delta: int, reason: str, at: datetime
    ) -> None:
        self.session.add(
            StockMovement(product_id=product.id, delta=delta, reason=reason, created_at=at)
        )

    def record_movement(self, product: Product, delta: int, reason: str) -> None:  # expect: step
        now = datetime.utcnow()
        product.on_hand += delta
        product.updated_at = now
        self.stage_movement(product, delta, reason, now)

    def adjust(self, sku: str, delta: int, reason: str) -> int:  # expect: step
        stmt = select(Product).where(Product.sku == sku).with_for_update()
        product = self.session.execute(stmt).scalar_one_or_none()
        if product is None:
            raise LookupError(sku)
        if product.on_hand + delta < 0:
            raise ValueError(f"{sku}: only {product.on_hand} on hand")
        self.record_movement(product, delta, reason)
        self.session.commit()
        return product.on_hand

    def transfer(self, from_sku: str, to_sku: str, quantity: int) -> None:  # expect: workflow
        self.adjust(from_sku, -quantity, f"transfer to {to_sku}")
        self.adjust(to_sku, quantity, f"transfer from {from_sku}")

    def movements_since(  # expect: step
        self, product_id: int, since: datetime
    ) -> list[StockMovement]:
        stmt = (
            select(StockMovement)
            .where(StockMovement.product_id == product_id, StockMovement.created_at >= since)
            .order_by(StockMovement.created_at)
        )
        return list(self.session.scalars(stmt))

    def valuation(self) -> Decimal:  # expect: step
        total = self.session.execute(select(func.sum(Product.unit_cost * Product.on_hand))).scalar()
        return Decimal(total or 0)


# -- supplier API --------------------------------------------------------------


class SupplierClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0) -> None:  # expect: plain
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {api_key}"})

    def build_order_request(  # expect: plain
        self, payload: dict[str, Any]
    ) -> requests.PreparedRequest:
        url = f"{self.base_url}/orders"
        headers = {**self.http.headers, "Idempotency-Key": payload["reference"]}
        return requests.Request("POST", url, json=payload, headers=headers).prepare()

    def fetch_catalogue(self, page: int = 1) -> dict[str, Any]:  # expect: step
        response = self.http.get(
            f"{self.base_url}/catalogue", params={"page": page}, timeout=self.timeout
        )
        response.raise_for_status()
        return response.json()

    def iter_catalogue(self) -> Iterator[dict[str, Any]]:  # expect: workflow
        page = 1
        while True:
            data = self.fetch_catalogue(page)
            yield from data["items"]
            if not data.get("next_page"):
                return
            page += 1

    def fetch_price(self, supplier_code: str) -> Decimal:  # expect: step
        url = f"{self.base_url}/items/{supplier_code}/price"
        response = self.http.get(url, timeout=self.timeout)
        response.raise_for_status()
        return parse_cost(response.json()["price"])

    def submit_order(self, payload: dict[str, Any]) -> str:  # expect: step
        response = self.http.send(self.build_order_request(payload), timeout=self.timeout)
        response.raise_for_status()
        return response.json()["order_id"]

    def cancel_order(self, external_id: str) -> None:  # expect: step
        url = f"{self.base_url}/orders/{external_id}"
        self.http.delete(url, timeout=self.timeout).raise_for_status()

    def stock_levels(self, supplier_codes: list[str]) -> dict[str, int]:  # expect: step
        response = self.http.post(
            f"{self.base_url}/availability", json={"items": supplier_codes}, timeout=self.timeout
        )
        response.raise_for_status()
        return {row["code"]: int(row["available"]) for row in response.json()["items"]}


@lru_cache(maxsize=1)
def get_supplier_client() -> SupplierClient:  # expect: plain
    return SupplierClient(os.environ["SUPPLIER_API_URL"], os.environ["SUPPLIER_API_KEY"])


def apply_supplier_price(session: Session, item: dict[str, Any]) -> bool:  # expect: step
    stmt = select(Product).where(Product.supplier_code == item["code"])
    product = session.execute(stmt).scalar_one_or_none()
    new_cost = parse_cost(item["price"])
    if product is None or product.unit_cost == new_cost:
        return False
    product.unit_cost = new_cost
    product.updated_at = datetime.utcnow()
    return True


def sync_catalogue_prices(client: SupplierClient | None = None) -> int:  # expect: step
    client = client or get_supplier_client()
    changed = sum(apply_supplier_price(db.session, item) for item in client.iter_catalogue())
    db.session.commit()
    log.info("supplier sync updated %d prices", changed)
    return changed


def quote_low_stock(client: SupplierClient) -> dict[str, Decimal]:  # expect: workflow
    quotes: dict[str, Decimal] = {}
    for product in low_stock_products():
        if product.supplier_code:
            quotes[product.sku] = client.fetch_price(product.supplier_code)
    return quotes


# -- purchase orders -----------------------------------------------------------


def new_order_reference() -> str:  # expect: step
    return f"PO-{datetime.utcnow():%Y%m%d}-{secrets.token_hex(3).upper()}"


def issue_api_token() -> str:  # expect: step
    return secrets.token_hex(32)


def draft_purchase_order(  # expect: plain
    supplier_code: str, products: list[Product], reference: str, now: datetime
) -> PurchaseOrder:
    order = PurchaseOrder(
        reference=reference, supplier_code=supplier_code, status="draft", created_at=now
    )
    order.lines = [
        PurchaseOrderLine(product_id=p.id, quantity=reorder_quantity(p), unit_cost=p.unit_cost)
        for p in products
        if reorder_quantity(p) > 0
    ]
    return order


def order_payload(reference: str, supplier: str, lines: list[dict]) -> dict:  # expect: plain
    return {
        "reference": reference,
        "supplier": supplier,
        "lines": [{"sku": line["sku"], "quantity": line["quantity"]} for line in lines],
    }


def create_reorder(supplier_code: str) -> int | None:  # expect: step
    products = [p for p in low_stock_products() if p.supplier_code == supplier_code]
    if not products:
        return None
    order = draft_purchase_order(supplier_code, products, new_order_reference(), datetime.utcnow())
    db.session.add(order)
    db.session.flush()
    order_id = order.id
    db.session.commit()
    return order_id


def submit_purchase_order(order_id: int, client: SupplierClient) -> str:  # expect: step
    order = db.session.get(PurchaseOrder, order_id)
    if order is None or order.status != "draft":
        raise LookupError(f"no draft purchase order {order_id}")
    skus = dict(db.session.execute(select(Product.id, Product.sku)).all())
    lines = [{"sku": skus[line.product_id], "quantity": line.quantity} for line in order.lines]
    payload = order_payload(order.reference, order.supplier_code, lines)
    order.external_id = client.submit_order(payload)
    order.status = "submitted"
    order.submitted_at = datetime.utcnow()
    db.session.commit()
    return order.reference


def cancel_purchase_order(order_id: int, client: SupplierClient) -> None:  # expect: step
    order = db.session.get(PurchaseOrder, order_id)
    if order is None:
        raise LookupError(f"no purchase order {order_id}")
    if order.status == "submitted" and order.external_id:
        client.cancel_order(order.external_id)
    order.status = "cancelled"
    db.session.commit()


def supplier_availability(client: SupplierClient) -> dict[str, int]:  # expect: workflow
    codes = sorted({p.supplier_code for p in low_stock_products() if p.supplier_code})
    return client.stock_levels(codes) if codes else {}


def export_stock_csv(path: Path) -> int:  # expect: step
    products = db.session.scalars(select(Product).order_by(Product.sku)).all()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sku", "name", "on_hand", "unit_cost"])
        writer.writerows([p.sku, p.name, p.on_hand, p.unit_cost] for p in products)
    return len(products)


def reorder_all(supplier_codes: list[str]) -> list[str]:  # expect: workflow
    client = get_supplier_client()
    references = []
    for code in supplier_codes:
        order_id = create_reorder(code)
        if order_id is not None:
            references.append(submit_purchase_order(order_id, client))
    return references


def low_stock_report() -> dict[str, Any]:  # expect: workflow
    lines = [StockLine(p.sku, p.on_hand, p.unit_cost * p.on_hand) for p in low_stock_products()]
    return {
        "skus": len(lines),
        "units": sum(line.on_hand for line in lines),
        "value": str(sum((line.value for line in lines), Decimal("0"))),
        "empty": sorted(line.sku for line in lines if line.on_hand <= 0),
    }


# -- HTTP ----------------------------------------------------------------------


@inventory.before_request
def require_api_token():  # expect: plain
    supplied = request.headers.get("X-Api-Token", "")
    if not secrets.compare_digest(supplied, current_app.config["INVENTORY_API_TOKEN"]):
        abort(401)


@inventory.before_request
def start_timer() -> None:  # expect: step
    g.started = time.perf_counter()


@inventory.after_request
def log_timing(response):  # expect: step
    elapsed_ms = (time.perf_counter() - g.started) * 1000
    log.info("%s %s -> %s in %.1fms", request.method, request.path, response.status, elapsed_ms)
    return response


@inventory.get("/health")
def health():  # expect: step
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}


@inventory.get("/products/<sku>")
def show_product(sku: str):  # expect: workflow
    product = find_product(sku)
    if product is None:
        abort(404)
    return jsonify(product_to_dict(product))


@inventory.get("/low-stock")
def list_low_stock():  # expect: workflow
    limit = min(request.args.get("limit", 50, type=int), 500)
    return jsonify([product_to_dict(p) for p in low_stock_products()[:limit]])


@inventory.get("/products/<sku>/movements")
def product_movements(sku: str):  # expect: workflow
    product = find_product(sku)
    if product is None:
        abort(404)
    since = datetime.fromisoformat(request.args.get("since", "2000-01-01"))
    movements = StockService(db.session).movements_since(product.id, since)
    return jsonify(
        [{"delta": m.delta, "reason": m.reason, "at": m.created_at.isoformat()} for m in movements]
    )


@inventory.get("/valuation")
def stock_valuation():  # expect: workflow
    return {"value": str(StockService(db.session).valuation())}


@inventory.get("/suppliers/<code>/products")
def supplier_products(code: str):  # expect: step
    page = request.args.get("page", 1, type=int)
    result = products_for_supplier(code).paginate(page=page, per_page=50, error_out=False)
    return jsonify({"items": [product_to_dict(p) for p in result.items], "total": result.total})


@inventory.post("/products")
def create_product():  # expect: step
    payload = request.get_json(force=True)
    sku = normalise_sku(payload["sku"])
    if Product.query.filter_by(sku=sku).first() is not None:
        abort(409)
    product = Product(
        sku=sku,
        name=payload["name"].strip(),
        supplier_code=payload.get("supplier_code"),
        unit_cost=parse_cost(payload["unit_cost"]),
        reorder_point=max(int(payload.get("reorder_point", 0)), 0),
        updated_at=datetime.utcnow(),
    )
    db.session.add(product)
    db.session.commit()
    return jsonify(product_to_dict(product)), 201


@inventory.post("/products/<sku>/adjust")
def adjust_stock(sku: str):  # expect: step
    delta, reason = validate_adjustment(request.get_json(force=True))
    product = Product.query.filter_by(sku=normalise_sku(sku)).first_or_404()
    StockService(db.session).record_movement(product, delta, reason)
    db.session.commit()
    return jsonify(product_to_dict(product))


@inventory.post("/transfers/<from_sku>/<to_sku>/<int:quantity>")
def transfer_stock(from_sku: str, to_sku: str, quantity: int):  # expect: workflow
    StockService(db.session).transfer(normalise_sku(from_sku), normalise_sku(to_sku), quantity)
    return {"moved": quantity}, 202


# -- CLI and app factory -------------------------------------------------------


@click.command("reorder")
@click.option("--supplier", "suppliers", multiple=True, required=True)
@with_appcontext
def reorder_command(suppliers: tuple[str, ...]) -> None:  # expect: workflow
    references = reorder_all(list(suppliers))
    log.info("submitted %d purchase orders: %s", len(references), ", ".join(references))


@click.command("sync-prices")
@with_appcontext
def sync_prices_command() -> None:  # expect: workflow
    sync_catalogue_prices()


@click.command("export-stock")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_stock_command(destination: Path) -> None:  # expect: workflow
    count = export_stock_csv(destination)
    log.info("exported %d products to %s", count, destination)


@click.command("prune-movements")
@click.option("--days", default=365, show_default=True)
@with_appcontext
def prune_movements_command(days: int) -> None:  # expect: step
    removed = archive_movements(db.session, datetime.utcnow() - timedelta(days=days))
    log.info("archived %d stock movements", removed)


def create_app(overrides: dict[str, Any] | None = None) -> Flask:  # expect: plain
    app = Flask(__name__)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=os.environ["DATABASE_URL"],
        INVENTORY_API_TOKEN=os.environ["INVENTORY_API_TOKEN"],
    )
    app.config.update(overrides or {})
    db.init_app(app)
    app.register_blueprint(inventory)
    for command in (
        reorder_command,
        sync_prices_command,
        export_stock_command,
        prune_movements_command,
    ):
        app.cli.add_command(command)
    return app
