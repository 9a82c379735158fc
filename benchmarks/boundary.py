"""What the HTTP boundary costs outside workflows: none measurable.

An httpx request loop and an aiohttp one against a local server, outside any
workflow, with the boundary (`autodurable._core._boundary_http`) not installed
and installed, in alternating rounds; prints the median seconds per request of
each and their ratio, per library. Run as ``python benchmarks/boundary.py
[--requests N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import statistics
import threading
import time
from collections.abc import Callable

import aiohttp
import httpx

from autodurable._core import _boundary_http


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed ACK

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _loop(client: httpx.Client, url: str, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        client.get(url).read()
    return (time.perf_counter() - started) / requests


async def _aiohttp_loop(session: aiohttp.ClientSession, url: str, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        async with session.get(url) as response:
            await response.read()
    return (time.perf_counter() - started) / requests


def _rounds(loop: Callable[[int], float], requests: int, rounds: int) -> tuple[float, float]:
    """Median seconds per request (not installed, installed), in alternating rounds."""
    loop(50)  # warm up: the connection, the code paths
    plain: list[float] = []
    installed: list[float] = []
    for _ in range(rounds):
        _boundary_http.uninstall()
        plain.append(loop(requests))
        _boundary_http.install()
        installed.append(loop(requests))
    _boundary_http.uninstall()
    return statistics.median(plain), statistics.median(installed)


def _report(title: str, base: float, wrapped: float) -> None:
    print(title)
    print(f"  not installed: {base * 1e6:8.1f} us/request (median)")
    print(f"  installed:     {wrapped * 1e6:8.1f} us/request (median)")
    print(f"  ratio installed/not installed: {wrapped / base:.3f}")


def _aiohttp_rounds(url: str, requests: int, rounds: int) -> tuple[float, float]:
    runner = asyncio.new_event_loop()  # one loop and one session for every round

    async def open_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    session = runner.run_until_complete(open_session())
    try:
        return _rounds(
            lambda count: runner.run_until_complete(_aiohttp_loop(session, url, count)),
            requests,
            rounds,
        )
    finally:
        runner.run_until_complete(session.close())
        runner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 requests, 1 round")
    options = parser.parse_args()
    if options.quick:
        options.requests, options.rounds = 20, 1
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    shape = f"{options.requests} requests x {options.rounds} rounds"
    with httpx.Client() as client:
        timed = _rounds(lambda count: _loop(client, url, count), options.requests, options.rounds)
    _report(f"httpx GET outside workflows, {shape}", *timed)
    timed = _aiohttp_rounds(url, options.requests, options.rounds)
    _report(f"aiohttp GET outside workflows, {shape}", *timed)
    server.shutdown()


if __name__ == "__main__":
    main()
