"""A small local file server and web shop, for downloader.py and crawler.py.

    python files_service.py --port 8002 [--delay SECONDS]

Everything it serves is derived from names only, so it is the same on every
request and every run.

For the downloader (JSON and text):

    GET /files                 {"files": [{"name": ..., "size": ...}, ...]}: the catalogue
    GET /files/<name>          the file's content (text/csv)
    GET /checksums/<name>      {"name": ..., "sha256": ...}

For the crawler (HTML):

    GET /shop/                 the home page: links to the category pages
    GET /shop/<category>       a category page: links to its item pages
    GET /shop/item/<sku>       an item page: name, price, stock

    GET /stats
        {"requests": {path: n}, "answered": {path: n}}: how many times each
        path was requested and answered. This is the effect counter: it shows
        whether a client asked for something twice.

``--delay`` makes every answer wait that long (see local_service.py), so that
a client can be killed while its requests are in flight.

The service stands for the outside world, so it is never made durable itself
(autodurable: off).
"""

from __future__ import annotations

import hashlib
import html

from local_service import Reply, not_found, serve

FILES = [f"sales-2024-{month:02d}.csv" for month in range(1, 13)]
CATEGORIES = {
    "tools": ["T-100", "T-101", "T-102", "T-103", "T-104"],
    "garden": ["G-200", "G-201", "G-202", "G-203"],
    "kitchen": ["K-300", "K-301", "K-302"],
}
NOUNS = ("hammer", "trowel", "kettle", "ladder", "bucket", "lantern", "whisk", "saw")
ADJECTIVES = ("red", "sturdy", "folding", "classic", "compact", "deluxe", "steel")


def _digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def file_content(name: str) -> str:
    """A CSV of a few dozen sales rows; its length depends on the name."""
    digest = _digest(name)
    lines = ["day,region,orders,revenue_cents"]
    for day in range(1, 20 + digest[0] % 40):
        region = ("north", "south", "east", "west")[(digest[day % 32] + day) % 4]
        orders = 1 + (digest[(day * 7) % 32] * day) % 97
        lines.append(f"{day},{region},{orders},{orders * (150 + digest[day % 32])}")
    return "\n".join(lines) + "\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item(sku: str) -> dict[str, object]:
    digest = _digest(sku)
    name = f"{ADJECTIVES[digest[0] % len(ADJECTIVES)]} {NOUNS[digest[1] % len(NOUNS)]}"
    return {"sku": sku, "name": name, "price_cents": 199 + digest[2] * 17, "stock": digest[3] % 40}


def page(title: str, body: str) -> Reply:
    text = (
        f"<!doctype html>\n<html><head><title>{html.escape(title)}</title></head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    return Reply(200, text=text, content_type="text/html; charset=utf-8")


def links(pairs: list[tuple[str, str]]) -> str:
    rows = "\n".join(f'  <li><a href="{href}">{html.escape(text)}</a></li>' for href, text in pairs)
    return f"<ul>\n{rows}\n</ul>"


def handle(method: str, path: str, query: dict[str, str], body: bytes) -> Reply:
    if method != "GET":
        return not_found(path)
    if path == "/files":
        return Reply(200, {"files": [{"name": n, "size": len(file_content(n))} for n in FILES]})
    if path.startswith("/files/") and path[len("/files/") :] in FILES:
        return Reply(200, text=file_content(path[len("/files/") :]), content_type="text/csv")
    if path.startswith("/checksums/") and path[len("/checksums/") :] in FILES:
        name = path[len("/checksums/") :]
        return Reply(200, {"name": name, "sha256": sha256(file_content(name))})
    if path == "/shop/":
        return page("Hardware shop", links([(f"/shop/{c}", c.title()) for c in CATEGORIES]))
    if path.startswith("/shop/item/"):
        sku = path[len("/shop/item/") :]
        if not any(sku in skus for skus in CATEGORIES.values()):
            return not_found(path)
        data = item(sku)
        body_html = (
            f'<p class="sku">{data["sku"]}</p>\n'
            f'<p class="price">{data["price_cents"] / 100:.2f} EUR</p>\n'
            f'<p class="stock">{data["stock"]} in stock</p>'
        )
        return page(str(data["name"]), body_html)
    category = path[len("/shop/") :] if path.startswith("/shop/") else ""
    if category in CATEGORIES:
        items = [(f"/shop/item/{sku}", sku) for sku in CATEGORIES[category]]
        return page(category.title(), links(items))
    return not_found(path)


if __name__ == "__main__":
    serve("files service", "A small local file server and web shop.", handle)
