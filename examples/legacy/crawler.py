"""Price crawler for the hardware shop.

Reads the shop's home page, then every category page (all at once), then
every item page (four at a time), and writes the catalogue it found to a JSON
file.

    SHOP_URL=http://127.0.0.1:8002/shop/ python crawler.py [OUTPUT]

OUTPUT defaults to ./catalogue.json.

Settings (environment):
    SHOP_URL  the shop's home page (default http://127.0.0.1:8002/shop/)
"""

import asyncio
import json
import os
import re
import sys
from urllib.parse import urljoin

import httpx

SHOP_URL = os.environ.get("SHOP_URL", "http://127.0.0.1:8002/shop/")
CONCURRENCY = 4

LINK = re.compile(r'<a href="([^"]+)">')
TITLE = re.compile(r"<h1>(.*?)</h1>")
PRICE = re.compile(r'<p class="price">([\d.]+) EUR</p>')
STOCK = re.compile(r'<p class="stock">(\d+) in stock</p>')


async def fetch(client: httpx.AsyncClient, url: str) -> str:
    response = await client.get(url)
    response.raise_for_status()
    return response.text


async def item_links(client: httpx.AsyncClient, category_url: str) -> list[str]:
    page = await fetch(client, category_url)
    return [urljoin(category_url, href) for href in LINK.findall(page)]


async def scrape_item(client: httpx.AsyncClient, limit: asyncio.Semaphore, url: str) -> dict:
    async with limit:
        page = await fetch(client, url)
    return {
        "sku": url.rsplit("/", 1)[-1],
        "name": TITLE.search(page).group(1),
        "price": float(PRICE.search(page).group(1)),
        "stock": int(STOCK.search(page).group(1)),
    }


async def main():
    output = sys.argv[1] if len(sys.argv) > 1 else "catalogue.json"
    async with httpx.AsyncClient(timeout=60) as client:
        home = await fetch(client, SHOP_URL)
        categories = [urljoin(SHOP_URL, href) for href in LINK.findall(home)]
        print(f"{len(categories)} categories")

        listings = await asyncio.gather(*(item_links(client, url) for url in categories))
        for url, links in zip(categories, listings, strict=True):
            print(f"{url.rsplit('/', 1)[-1]}: {len(links)} items")

        limit = asyncio.Semaphore(CONCURRENCY)
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(scrape_item(client, limit, url))
                for links in listings
                for url in links
            ]
    items = [task.result() for task in tasks]

    with open(output, "w") as f:
        json.dump({"items": items}, f, indent=2)

    cheapest = min(items, key=lambda item: item["price"])
    dearest = max(items, key=lambda item: item["price"])
    print(f"crawled {len(items)} items, {sum(item['stock'] for item in items)} in stock")
    print(f"cheapest: {cheapest['name']} ({cheapest['price']:.2f} EUR)")
    print(f"dearest: {dearest['name']} ({dearest['price']:.2f} EUR)")
    print(f"wrote {output}")


if __name__ == "__main__":
    asyncio.run(main())
