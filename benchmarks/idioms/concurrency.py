"""Concurrency: thread pools, threads, asyncio tasks, ``to_thread`` and executors.

A function that hands a project's I/O function to a pool, a thread or a task
runs that function (a workflow); one that hands a library's I/O function
(``requests.head``) or a lambda doing I/O to the pool does the I/O itself.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any

import httpx
import requests

from .files_processes import convert, load_rows, output_name, read_config
from .web_clients import fetch_invoice, fetch_rates, get_account

# --- thread pools -----------------------------------------------------------------


def fetch_all(ids: list[str]) -> list[dict[str, Any]]:  # expect: workflow
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(fetch_invoice, ids))


def first_account(ids: list[str]) -> tuple[str, dict[str, Any]] | None:  # expect: workflow
    with ThreadPoolExecutor() as pool:
        futures = {pool.submit(get_account, account_id): account_id for account_id in ids}
        for future in as_completed(futures):
            if future.exception() is None:
                return futures[future], future.result()
    return None


def download_many(urls: list[str]) -> list[bytes]:  # expect: step
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda url: httpx.get(url, timeout=10).content, urls))


def head_all(urls: list[str]) -> list[int]:  # expect: step
    with ThreadPoolExecutor() as pool:
        futures = [pool.submit(requests.head, url, timeout=5) for url in urls]
        return [future.result().status_code for future in futures]


def load_all(paths: list[str]) -> list[dict[str, str]]:  # expect: workflow
    with ThreadPoolExecutor() as pool:
        return [row for rows in pool.map(load_rows, paths) for row in rows]


def transcode_parallel(paths: list[str]) -> None:  # expect: workflow
    with ProcessPoolExecutor() as pool:
        list(pool.map(convert, paths, [output_name(path) for path in paths]))


def submit_invoices(pool: ThreadPoolExecutor, ids: Iterable[str]) -> list[Any]:  # expect: workflow
    futures = [pool.submit(fetch_invoice, invoice_id) for invoice_id in ids]
    return [future.result() for future in futures]


def square(x: int) -> int:  # expect: plain
    return x * x


def parallel_squares(numbers: list[int]) -> int:  # expect: plain
    with ThreadPoolExecutor() as pool:
        return sum(pool.map(square, numbers))


def chunked(items: list[Any], n: int) -> list[list[Any]]:  # expect: plain
    return [items[i : i + n] for i in range(0, len(items), n)]


# --- threads ------------------------------------------------------------------------


def ping_worker(stop: threading.Event, url: str) -> None:  # expect: step
    while not stop.wait(30):
        httpx.post(url, json={"alive": True})


def start_pinger(url: str) -> tuple[threading.Thread, threading.Event]:  # expect: workflow
    stop = threading.Event()
    thread = threading.Thread(target=ping_worker, args=(stop, url), daemon=True)
    thread.start()
    return thread, stop


class Collector:
    def __init__(self) -> None:  # expect: plain
        self.results: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def collect(self, invoice_id: str) -> None:  # expect: workflow
        data = fetch_invoice(invoice_id)
        with self.lock:
            self.results[invoice_id] = data

    def run(self, ids: list[str]) -> dict[str, dict[str, Any]]:  # expect: workflow
        threads = [threading.Thread(target=self.collect, args=(i,)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.results


def account_worker(jobs: queue.Queue, out: list[dict[str, Any]]) -> None:  # expect: workflow
    while (account_id := jobs.get()) is not None:
        out.append(get_account(account_id))
        jobs.task_done()


def run_workers(ids: list[str], n: int = 4) -> list[dict[str, Any]]:  # expect: workflow
    jobs: queue.Queue[str | None] = queue.Queue()
    out: list[dict[str, Any]] = []
    workers = [threading.Thread(target=account_worker, args=(jobs, out)) for _ in range(n)]
    for worker in workers:
        worker.start()
    for account_id in [*ids, *([None] * n)]:
        jobs.put(account_id)
    for worker in workers:
        worker.join()
    return out


# --- asyncio ------------------------------------------------------------------------


async def fetch_one(client: httpx.AsyncClient, url: str) -> str:  # expect: step
    return (await client.get(url)).text


async def gather_pages(urls: list[str]) -> list[str]:  # expect: workflow
    async with httpx.AsyncClient() as client:
        return await asyncio.gather(*(fetch_one(client, url) for url in urls))


async def rates_for(currencies: list[str]) -> dict[str, Any]:  # expect: workflow
    tasks = [asyncio.create_task(fetch_rates(c)) for c in currencies]
    return dict(zip(currencies, await asyncio.gather(*tasks), strict=True))


async def load_with_taskgroup(paths: list[str]) -> list[Any]:  # expect: workflow
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(asyncio.to_thread(load_rows, path)) for path in paths]
    return [task.result() for task in tasks]


async def first_rates(currencies: list[str]) -> dict[str, float] | None:  # expect: workflow
    for next_done in asyncio.as_completed([fetch_rates(c) for c in currencies]):
        return await next_done
    return None


async def fastest_page(urls: list[str]) -> str:  # expect: workflow
    async with httpx.AsyncClient() as client:
        tasks = {asyncio.create_task(fetch_one(client, url)) for url in urls}
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return done.pop().result()


async def read_config_async(path: str) -> dict[str, Any]:  # expect: workflow
    return await asyncio.to_thread(read_config, path)


async def blocking_get(url: str) -> requests.Response:  # expect: step
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, requests.get, url)


async def invoice_in_executor(invoice_id: str) -> dict[str, Any]:  # expect: workflow
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, fetch_invoice, invoice_id)


async def double(value: int) -> int:  # expect: plain
    return value * 2


async def doubled(values: list[int]) -> list[int]:  # expect: plain
    return list(await asyncio.gather(*(double(v) for v in values)))


class Limited:
    def __init__(self, client: httpx.AsyncClient, limit: int = 5) -> None:  # expect: plain
        self.client = client
        self.semaphore = asyncio.Semaphore(limit)

    async def get(self, url: str) -> str:  # expect: step
        async with self.semaphore:
            response = await self.client.get(url)
            return response.text

    async def many(self, urls: list[str]) -> list[str]:  # expect: workflow
        return list(await asyncio.gather(*(self.get(url) for url in urls)))


async def background_sync(ids: list[str]) -> asyncio.Task[Any]:  # expect: workflow
    return asyncio.create_task(asyncio.to_thread(fetch_all, ids))


async def fetch_and_store(urls: list[str], path: str) -> int:  # expect: step
    pages = await gather_pages(urls)
    with open(path, "w", encoding="utf-8") as fh:
        return fh.write("\n".join(pages))
