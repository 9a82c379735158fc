"""The legacy example programs and their local services, for the crash sweeps."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..helpers import ROOT, serving

EXAMPLE = ROOT / "examples" / "legacy"


@contextmanager
def service(folder: Path, script: str, *args: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / script), "--port", "0", *args],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    with serving(process) as url:
        yield url


PROGRAMS = {
    # program, its arguments, its service (script, arguments), the environment naming
    # it, and what it leaves in its folder (removed before each run that starts afresh)
    "weather_report": ("weather_report.py", ["Oslo", "Rome"], ("weather_service.py",
                       ["--state", "weather.json"]), lambda url: {"WEATHER_URL": url},
                       "weather"),
    "billing_job": ("billing_job.py", ["billing.db"], ("payments_service.py", []),
                    lambda url: {"PAYMENTS_URL": url}, "billing.db"),
    "downloader": ("downloader.py", [], ("files_service.py", []),
                   lambda url: {"FILES_URL": url}, "downloads"),
    "crawler": ("crawler.py", [], ("files_service.py", []),
                lambda url: {"SHOP_URL": url + "/shop/"}, "catalogue.json"),
}  # fmt: skip
