"""A polite site crawler: aiohttp fetches under a semaphore, robots.txt rules, sitemap
and link discovery with BeautifulSoup and ElementTree, a Redis seen-set, results appended
with aiofiles, parsing and snapshots handed to a thread pool, and a blocking link checker."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import os
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlparse, urlunparse
from urllib.robotparser import RobotFileParser
from xml.etree import ElementTree

import aiofiles
import aiohttp
import redis
from bs4 import BeautifulSoup

log = logging.getLogger(__name__)

SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
PARSE_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="parse")


@dataclass
class Page:
    url: str
    status: int
    html: str
    fetched_at: float


@dataclass
class CrawlConfig:
    seeds: list[str]
    allowed_hosts: set[str]
    out_path: str
    snapshot_root: str
    user_agent: str = "polite-crawler/2.1 (+https://example.com/bot)"
    concurrency: int = 8

    def host_allowed(self, url: str) -> bool:  # expect: plain
        return urlparse(url).hostname in self.allowed_hosts


# -- pure URL and HTML handling -----------------------------------------------------


def normalise_url(url: str) -> str:  # expect: plain
    url, _fragment = urldefrag(url.strip())
    parts = urlparse(url)
    path = parts.path.rstrip("/") or "/"
    return urlunparse((parts.scheme.lower(), parts.netloc.lower(), path, "", parts.query, ""))


def robots_url(url: str) -> str:  # expect: plain
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}/robots.txt"


def extract_links(html: str, base_url: str) -> list[str]:  # expect: plain
    soup = BeautifulSoup(html, "html.parser")
    links = []
    for anchor in soup.find_all("a", href=True):
        href = anchor.get("href", "")
        if href.startswith(("mailto:", "javascript:", "tel:")):
            continue
        links.append(normalise_url(urljoin(base_url, href)))
    return sorted(set(links))


def extract_text(html: str) -> dict[str, Any]:  # expect: plain
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    headings = [h.get_text(" ", strip=True) for h in soup.find_all(["h1", "h2"])]
    return {"title": title, "headings": headings, "text": soup.get_text(" ", strip=True)}


def parse_sitemap(xml: str) -> list[str]:  # expect: plain
    root = ElementTree.fromstring(xml)
    return [loc.text.strip() for loc in root.iter(f"{SITEMAP_NS}loc") if loc.text]


def parse_page(page: Page) -> tuple[list[str], dict[str, Any]]:  # expect: plain
    return extract_links(page.html, page.url), extract_text(page.html)


def url_key(url: str) -> str:  # expect: plain
    return hashlib.blake2b(url.encode(), digest_size=16).hexdigest()


def snapshot_path(root: str, url: str) -> Path:  # expect: plain
    key = url_key(url)
    return Path(root) / key[:2] / f"{key}.html.gz"


# -- clients ------------------------------------------------------------------------


def make_session(cfg: CrawlConfig) -> aiohttp.ClientSession:  # expect: plain
    return aiohttp.ClientSession(
        headers={"User-Agent": cfg.user_agent},
        timeout=aiohttp.ClientTimeout(total=30, connect=10),
        connector=aiohttp.TCPConnector(limit_per_host=4),
    )


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:  # expect: plain
    return redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))


# -- I/O ----------------------------------------------------------------------------


async def fetch(session: aiohttp.ClientSession, url: str) -> Page:  # expect: step
    async with session.get(url, allow_redirects=True) as resp:
        html = await resp.text(errors="replace") if resp.content_type == "text/html" else ""
        return Page(url=str(resp.url), status=resp.status, html=html, fetched_at=time.time())


async def fetch_robots(session, url: str) -> RobotFileParser:  # expect: step
    parser = RobotFileParser(robots_url(url))
    async with session.get(parser.url) as resp:
        body = await resp.text() if resp.status == 200 else ""
    parser.parse(body.splitlines())
    return parser


def fetch_robots_blocking(url: str) -> RobotFileParser:  # expect: step
    parser = RobotFileParser(robots_url(url))
    parser.read()
    return parser


async def fetch_sitemap(session: aiohttp.ClientSession, root: str) -> list[str]:  # expect: step
    async with session.get(urljoin(root, "/sitemap.xml")) as resp:
        if resp.status != 200:
            return []
        return parse_sitemap(await resp.text())


def mark_seen(url: str, key: str = "crawl:seen") -> bool:  # expect: step
    return redis_client().sadd(key, url_key(url)) == 1


def reset_seen(key: str = "crawl:seen") -> int:  # expect: step
    return redis_client().delete(key)


async def load_seeds(path: str) -> list[str]:  # expect: step
    async with aiofiles.open(path, encoding="utf-8") as fh:
        lines = await fh.readlines()
    return [normalise_url(line) for line in lines if line.strip() and not line.startswith("#")]


async def post_results(session, endpoint: str, records: list[dict]) -> int:  # expect: step
    async with session.post(endpoint, json={"records": records}) as resp:
        resp.raise_for_status()
        return (await resp.json())["accepted"]


def save_snapshot(page: Page, root: str) -> str:  # expect: step
    path = snapshot_path(root, page.url)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(page.html)
    return str(path)


def head_status(url: str, timeout: float = 10.0) -> int:  # expect: step
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return resp.status


# -- coordination -------------------------------------------------------------------


async def claim(url: str) -> bool:  # expect: workflow
    return await asyncio.to_thread(mark_seen, url)


async def fetch_all(session: aiohttp.ClientSession, urls: list, limit: int = 8):  # expect: workflow
    semaphore = asyncio.Semaphore(limit)

    async def one(url: str) -> Page:  # expect: workflow
        async with semaphore:
            return await fetch(session, url)

    return list(await asyncio.gather(*(one(url) for url in urls)))


def check_links(urls: list[str], workers: int = 8) -> dict[str, int]:  # expect: workflow
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(urls, pool.map(head_status, urls), strict=True))


class RobotsCache:
    def __init__(self, session: aiohttp.ClientSession, agent: str) -> None:  # expect: plain
        self.session = session
        self.agent = agent
        self.parsers: dict[str, RobotFileParser] = {}

    async def allowed(self, url: str) -> bool:  # expect: workflow
        host = urlparse(url).netloc
        if host not in self.parsers:
            self.parsers[host] = await fetch_robots(self.session, url)
        return self.parsers[host].can_fetch(self.agent, url)


class CrawlStats:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:  # expect: step
        self.clock = clock
        self.started = clock()
        self.by_status: dict[int, int] = {}

    def record(self, page: Page) -> None:  # expect: plain
        self.by_status[page.status] = self.by_status.get(page.status, 0) + 1

    def pages(self) -> int:  # expect: plain
        return sum(self.by_status.values())

    def rate(self) -> float:  # expect: step
        elapsed = self.clock() - self.started
        return self.pages() / elapsed if elapsed > 0 else 0.0

    def summary(self) -> dict[str, Any]:  # expect: workflow
        rate = round(self.rate(), 2)
        return {"pages": self.pages(), "per_second": rate, "status": dict(self.by_status)}


class ResultWriter:
    def __init__(self, path: str) -> None:  # expect: plain
        self.path = path
        self.lock = asyncio.Lock()

    def record_line(self, page: Page, extracted: dict[str, Any]) -> str:  # expect: plain
        record = {"url": page.url, "status": page.status, "fetched_at": page.fetched_at}
        return json.dumps(record | extracted, ensure_ascii=False)

    async def write(self, page: Page, extracted: dict[str, Any]) -> None:  # expect: step
        line = self.record_line(page, extracted)
        async with self.lock, aiofiles.open(self.path, "a", encoding="utf-8") as fh:
            await fh.write(line + "\n")


class Crawler:
    def __init__(self, cfg: CrawlConfig, session, writer: ResultWriter) -> None:  # expect: workflow
        self.cfg = cfg
        self.session = session
        self.writer = writer
        self.robots = RobotsCache(session, cfg.user_agent)
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.semaphore = asyncio.Semaphore(cfg.concurrency)
        self.stats = CrawlStats()

    async def fetch_limited(self, url: str) -> Page:  # expect: workflow
        async with self.semaphore:
            return await fetch(self.session, url)

    async def visit(self, url: str) -> list[str]:  # expect: workflow
        if not await self.robots.allowed(url):
            return []
        page = await self.fetch_limited(url)
        self.stats.record(page)
        if page.status != 200 or not page.html:
            return []
        loop = asyncio.get_running_loop()
        links, extracted = await loop.run_in_executor(PARSE_POOL, parse_page, page)
        await loop.run_in_executor(PARSE_POOL, save_snapshot, page, self.cfg.snapshot_root)
        await self.writer.write(page, extracted)
        return [link for link in links if self.cfg.host_allowed(link)]

    async def worker(self) -> None:  # expect: workflow
        while True:
            url = await self.queue.get()
            try:
                for link in await self.visit(url):
                    if await claim(link):
                        self.queue.put_nowait(link)
            except aiohttp.ClientError as exc:
                log.warning("failed to crawl %s: %s", url, exc)
            finally:
                self.queue.task_done()

    async def seed(self) -> int:  # expect: workflow
        found = 0
        for root in self.cfg.seeds:
            for url in [root, *await fetch_sitemap(self.session, root)]:
                if self.cfg.host_allowed(url) and await claim(normalise_url(url)):
                    self.queue.put_nowait(normalise_url(url))
                    found += 1
        return found

    async def run(self) -> CrawlStats:  # expect: workflow
        await self.seed()
        workers = [asyncio.create_task(self.worker()) for _ in range(self.cfg.concurrency)]
        await self.queue.join()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        return self.stats


class CrawlClient:
    """Owns an aiohttp session for one-off fetches outside a crawl."""

    def __init__(self, cfg: CrawlConfig) -> None:  # expect: plain
        self.cfg = cfg
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CrawlClient:  # expect: plain
        self.session = make_session(self.cfg)
        return self

    async def __aexit__(self, *exc_info: object) -> None:  # expect: plain
        if self.session is not None:
            await self.session.close()

    async def get(self, url: str) -> Page:  # expect: workflow
        if self.session is None:
            raise RuntimeError("use CrawlClient as an async context manager")
        return await fetch(self.session, url)


async def refresh_pages(cfg: CrawlConfig, urls: list[str]) -> int:  # expect: workflow
    writer = ResultWriter(cfg.out_path)
    async with CrawlClient(cfg) as client:
        pages = await fetch_all(client.session, urls, limit=cfg.concurrency)
    for page in pages:
        await writer.write(page, extract_text(page.html))
    return len(pages)


async def crawl(cfg: CrawlConfig) -> dict[str, Any]:  # expect: workflow
    async with make_session(cfg) as session:
        crawler = Crawler(cfg, session, ResultWriter(cfg.out_path))
        stats = await crawler.run()
    return stats.summary()


def config_from_env() -> CrawlConfig:  # expect: plain
    seeds = [s.strip() for s in os.environ.get("CRAWL_SEEDS", "").split(",") if s.strip()]
    return CrawlConfig(
        seeds=seeds,
        allowed_hosts={urlparse(s).hostname or "" for s in seeds},
        out_path=os.environ.get("CRAWL_OUT", "pages.jsonl"),
        snapshot_root=os.environ.get("CRAWL_SNAPSHOTS", "snapshots"),
    )


def main() -> None:  # expect: workflow
    summary = asyncio.run(crawl(config_from_env()))
    log.info("crawl finished: %s", summary)
