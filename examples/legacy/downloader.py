"""Monthly sales files downloader.

Downloads every file of the file server's catalogue, four at a time, checks
each against the server's checksum and writes an index of what it got.

    FILES_URL=http://127.0.0.1:8002 python downloader.py

Settings (environment):
    FILES_URL       the file server (default http://127.0.0.1:8002)
    DOWNLOAD_DIR    output folder (default ./downloads)
"""

import hashlib
import json
import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed

SERVER = os.environ.get("FILES_URL", "http://127.0.0.1:8002").rstrip("/")
DOWNLOAD_DIR = os.environ.get("DOWNLOAD_DIR", "downloads")


def get_json(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def download(url):
    name = url.rsplit("/", 1)[-1]
    with urllib.request.urlopen(url, timeout=60) as response:
        data = response.read()
    path = os.path.join(DOWNLOAD_DIR, name)
    with open(path, "wb") as f:
        f.write(data)
    return {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def main():
    catalogue = get_json(SERVER + "/files")
    names = [entry["name"] for entry in catalogue["files"]]
    print(f"{len(names)} files to download")
    os.makedirs(DOWNLOAD_DIR, exist_ok=True)

    urls = [SERVER + "/files/" + name for name in names]
    with ThreadPoolExecutor(max_workers=4) as pool:
        downloaded = []
        for n, info in enumerate(pool.map(download, urls), start=1):
            print(f"[{n:2}/{len(urls)}] {info['name']}: {info['size']:,} bytes")
            downloaded.append(info)

        futures = {pool.submit(get_json, SERVER + "/checksums/" + name): name for name in names}
        expected = {}
        for future in as_completed(futures):
            expected[futures[future]] = future.result()["sha256"]

    bad = [info["name"] for info in downloaded if info["sha256"] != expected[info["name"]]]
    index = {
        "files": [dict(info, verified=info["name"] not in bad) for info in downloaded],
        "total_bytes": sum(info["size"] for info in downloaded),
    }
    with open(os.path.join(DOWNLOAD_DIR, "index.json"), "w") as f:
        json.dump(index, f, indent=2)

    print(f"downloaded {len(downloaded)} files, {index['total_bytes']:,} bytes")
    if bad:
        print(f"checksums: {len(downloaded) - len(bad)} ok, {len(bad)} bad: {', '.join(bad)}")
    else:
        print(f"checksums: {len(downloaded)} ok, 0 bad")


if __name__ == "__main__":
    main()
