"""A polite crawler: robots.txt, a pooled requests session, BeautifulSoup, aiohttp fan-out."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse
from urllib.robotparser import RobotFileParser

import aiohttp
import requests
from bs4 import BeautifulSoup
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .data_sync import s3_client

logger = logging.getLogger(__name__)

USER_AGENT = "examplebot/2.1 (+https://example.com/bot)"
OUTPUT_DIR = Path(os.environ.get("CRAWL_OUTPUT", "crawl-output"))
SKIP_EXTENSIONS = (".pdf", ".zip", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".mp4")


@dataclass
class Page:
    url: str
    status: int
    title: str = ""
    links: list[str] = field(default_factory=list)
    text: str = ""

    def fingerprint(self) -> str:  # expect: plain
        return hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest()

    def to_json(self) -> str:  # expect: plain
        return json.dumps(asdict(self), ensure_ascii=False)


# --- URLs and parsing (pure) ------------------------------------------------------------------


def canonical(url: str) -> str:  # expect: plain
    url, _fragment = urldefrag(url)
    parts = urlparse(url)
    path = parts.path or "/"
    parts = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower(), path=path)
    return parts.geturl()


def same_site(url: str, root: str) -> bool:  # expect: plain
    return urlparse(url).netloc == urlparse(root).netloc


def robots_url(url: str) -> str:  # expect: plain
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}/robots.txt"


def slug_for(url: str) -> str:  # expect: plain
    path = urlparse(url).path.strip("/") or "index"
    return re.sub(r"[^a-zA-Z0-9._-]+", "-", path)[:120]


def page_id(url: str) -> str:  # expect: plain
    return str(uuid.uuid5(uuid.NAMESPACE_URL, canonical(url)))


def extract_links(soup: BeautifulSoup, base_url: str) -> list[str]:  # expect: plain
    links = []
    for anchor in soup.find_all("a", href=True):
        if "nofollow" in (anchor.get("rel") or []):
            continue
        url = canonical(urljoin(base_url, anchor["href"]))
        if url.startswith("http") and not url.lower().endswith(SKIP_EXTENSIONS):
            links.append(url)
    return list(dict.fromkeys(links))


def visible_text(soup: BeautifulSoup) -> str:  # expect: plain
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return re.sub(r"\s+", " ", soup.get_text(" ")).strip()


def meta_robots(soup: BeautifulSoup) -> set[str]:  # expect: plain
    tag = soup.find("meta", attrs={"name": "robots"})
    content = tag.get("content", "") if tag else ""
    return {part.strip().lower() for part in content.split(",") if part.strip()}


def parse_page(url: str, status: int, html: str) -> Page:  # expect: plain
    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    links = [] if "nofollow" in meta_robots(soup) else extract_links(soup, url)
    return Page(url, status, title, links, visible_text(soup))


def parse_sitemap(xml: str) -> list[str]:  # expect: plain
    soup = BeautifulSoup(xml, "xml")
    return [loc.get_text(strip=True) for loc in soup.find_all("loc")]


def disallowed_paths(robots_txt: str, agent: str = "*") -> list[str]:  # expect: plain
    paths: list[str] = []
    applies = False
    for raw in robots_txt.splitlines():
        line = raw.split("#", 1)[0].strip()
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            applies = value == agent or value == "*"
        elif key == "disallow" and applies and value:
            paths.append(value)
    return paths


def is_path_allowed(path: str, disallowed: list[str]) -> bool:  # expect: plain
    return not any(path.startswith(prefix) for prefix in disallowed)


def dedupe(pages: list[Page]) -> list[Page]:  # expect: plain
    seen: set[str] = set()
    unique = []
    for page in pages:
        if page.fingerprint() not in seen:
            seen.add(page.fingerprint())
            unique.append(page)
    return unique


# --- the synchronous crawler -------------------------------------------------------------------


def make_session(retries: int = 3) -> requests.Session:  # expect: plain
    session = requests.Session()
    retry = Retry(total=retries, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503))
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def load_robots(url: str) -> RobotFileParser:  # expect: step
    parser = RobotFileParser(robots_url(url))
    parser.read()
    return parser


def sitemap_urls(session, sitemap_url: str) -> list[str]:  # expect: step
    response = session.get(sitemap_url, timeout=20)
    response.raise_for_status()
    return parse_sitemap(response.text)


class Crawler:
    def __init__(self, root: str, max_pages: int = 200, delay: float = 1.0):  # expect: plain
        self.root = canonical(root)
        self.session = make_session()
        self.max_pages = max_pages
        self.delay = delay
        self.robots: RobotFileParser | None = None
        self.seen: set[str] = set()
        self._last_request = 0.0

    @classmethod
    def from_env(cls) -> Crawler:  # expect: plain
        return cls(os.environ["CRAWL_ROOT"], int(os.environ.get("CRAWL_MAX_PAGES", "200")))

    def allowed(self, url: str) -> bool:  # expect: workflow
        if self.robots is None:
            self.robots = load_robots(self.root)
        return self.robots.can_fetch(USER_AGENT, url)

    def _throttle(self) -> None:  # expect: step
        wait = self.delay - (time.monotonic() - self._last_request)
        if wait > 0:
            time.sleep(wait)
        self._last_request = time.monotonic()

    def fetch(self, url: str) -> Page | None:  # expect: step
        self._throttle()
        response = self.session.get(url, timeout=20)
        if "text/html" not in response.headers.get("Content-Type", ""):
            return None
        return parse_page(response.url, response.status_code, response.text)

    def head_ok(self, url: str) -> bool:  # expect: step
        return self.session.head(url, allow_redirects=True, timeout=10).ok

    def crawl(self) -> list[Page]:  # expect: workflow
        queue = deque([self.root])
        pages: list[Page] = []
        while queue and len(pages) < self.max_pages:
            url = queue.popleft()
            if url in self.seen or not self.allowed(url):
                continue
            self.seen.add(url)
            page = self.fetch(url)
            if page is None:
                continue
            pages.append(page)
            queue.extend(link for link in page.links if same_site(link, self.root))
        return pages

    def close(self) -> None:  # expect: plain
        self.session.close()


# --- asynchronous fan-out ------------------------------------------------------------------------


async def fetch_one(session: aiohttp.ClientSession, url: str, limit):  # expect: step
    async with limit, session.get(url, timeout=aiohttp.ClientTimeout(total=20)) as response:
        if response.status != 200:
            return None
        html = await response.text()
    return parse_page(str(response.url), response.status, html)


async def fetch_many(urls: list[str], concurrency: int = 10) -> list[Page]:  # expect: workflow
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
        results = await asyncio.gather(
            *(fetch_one(session, url, limit) for url in urls), return_exceptions=True
        )
    return [result for result in results if isinstance(result, Page)]


async def check_links(urls: list[str]) -> dict[str, int]:  # expect: workflow
    async with aiohttp.ClientSession() as session:

        async def status(url: str) -> int:  # expect: step
            async with session.head(url, allow_redirects=True) as response:
                return response.status

        codes = await asyncio.gather(*(status(url) for url in urls))
    return dict(zip(urls, codes, strict=True))


class AsyncFetcher:
    def __init__(self, concurrency: int = 8) -> None:  # expect: plain
        self.session: aiohttp.ClientSession | None = None
        self.limit = asyncio.Semaphore(concurrency)

    async def __aenter__(self) -> AsyncFetcher:  # expect: plain
        self.session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        return self

    async def __aexit__(self, *exc_info: object) -> None:  # expect: plain
        if self.session is not None:
            await self.session.close()

    async def get_text(self, url: str) -> str:  # expect: step
        assert self.session is not None
        async with self.limit, self.session.get(url) as response:
            response.raise_for_status()
            return await response.text()

    async def pages(self, urls: list[str]) -> list[Page]:  # expect: workflow
        texts = await asyncio.gather(*(self.get_text(url) for url in urls))
        return [parse_page(url, 200, html) for url, html in zip(urls, texts, strict=True)]


async def crawl_hosts(roots: list[str]) -> dict[str, list[Page]]:  # expect: workflow
    async with AsyncFetcher() as fetcher:
        tasks = {root: asyncio.create_task(fetcher.pages([root])) for root in roots}
        return {root: await task for root, task in tasks.items()}


def crawl_sitemap(sitemap_url: str) -> list[Page]:  # expect: workflow
    urls = sitemap_urls(make_session(), sitemap_url)
    return asyncio.run(fetch_many(urls))


# --- results ---------------------------------------------------------------------------------


def run_id() -> str:  # expect: step
    return time.strftime("%Y%m%dT%H%M%S")


def page_path(out_dir: Path, page: Page) -> Path:  # expect: plain
    return out_dir / urlparse(page.url).netloc / f"{slug_for(page.url)}.json"


def save_page(out_dir: Path, page: Page) -> Path:  # expect: step
    path = page_path(out_dir, page)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page.to_json(), encoding="utf-8")
    return path


def save_all(pages: list[Page], out_dir: Path = OUTPUT_DIR) -> list[Path]:  # expect: workflow
    return [save_page(out_dir, page) for page in pages]


async def save_async(pages: list[Page], out_dir: Path) -> None:  # expect: workflow
    await asyncio.gather(*(asyncio.to_thread(save_page, out_dir, page) for page in pages))


def write_index(out_dir: Path, pages: list[Page]) -> Path:  # expect: step
    index = out_dir / "index.jsonl"
    with index.open("w", encoding="utf-8") as handle:
        for page in pages:
            handle.write(json.dumps({"url": page.url, "title": page.title}) + "\n")
    return index


def load_seen(out_dir: Path) -> set[str]:  # expect: step
    path = out_dir / "seen.txt"
    if not path.exists():
        return set()
    return set(path.read_text(encoding="utf-8").split())


def upload_pages(pages: list[Page], bucket: str, prefix: str = "crawl") -> int:  # expect: step
    client = s3_client()
    for page in pages:
        key = f"{prefix}/{page_id(page.url)}.json"
        client.put_object(Bucket=bucket, Key=key, Body=page.to_json().encode("utf-8"))
    return len(pages)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:  # expect: plain
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root")
    parser.add_argument("--max-pages", type=int, default=200)
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:  # expect: workflow
    args = parse_args(argv)
    crawler = Crawler(args.root, max_pages=args.max_pages)
    try:
        pages = dedupe(crawler.crawl())
    finally:
        crawler.close()
    out = args.out / run_id()
    save_all(pages, out)
    write_index(out, pages)
    logger.info("saved %d pages to %s", len(pages), out)
    return 0
