"""What the HTTP boundary costs outside workflows: none measurable.

An httpx request loop against a local server, outside any workflow, with the
boundary (`autodurable._core._boundary_http`) not installed and installed, in
alternating rounds; prints the median seconds per request of each and their
ratio. Run as ``python benchmarks/boundary.py [--requests N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import threading
import time

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
    plain: list[float] = []
    installed: list[float] = []
    with httpx.Client() as client:
        _loop(client, url, 50)  # warm up: the connection, the code paths
        for _ in range(options.rounds):
            _boundary_http.uninstall()
            plain.append(_loop(client, url, options.requests))
            _boundary_http.install()
            installed.append(_loop(client, url, options.requests))
    _boundary_http.uninstall()
    server.shutdown()
    base, wrapped = statistics.median(plain), statistics.median(installed)
    print(f"httpx GET outside workflows, {options.requests} requests x {options.rounds} rounds")
    print(f"  not installed: {base * 1e6:8.1f} us/request (median)")
    print(f"  installed:     {wrapped * 1e6:8.1f} us/request (median)")
    print(f"  ratio installed/not installed: {wrapped / base:.3f}")


if __name__ == "__main__":
    main()
