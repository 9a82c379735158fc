"""Print shelf labels: an ordinary program, written with no thought of crashes.

    python app.py SERVICE_URL [LABELS_FILE]

For each item it asks the price service for the price (an HTTP GET), appends
a label to LABELS_FILE (default ``labels.txt``), reports progress, and pauses
briefly so as not to hammer the service. There is no autodurable import here:
``autodurable run app.py SERVICE_URL`` makes it durable as it is.
"""

import json
import sys
import time
import urllib.request

ITEMS = ["apples", "bread", "cheese", "dates", "eggs"]
PAUSE_SECONDS = 0.5


def fetch_price(service: str, item: str) -> int:
    """The price of `item` in cents, from the price service."""
    with urllib.request.urlopen(f"{service}/price/{item}", timeout=10) as response:
        return int(json.load(response)["cents"])


def write_label(labels_file: str, item: str, cents: int) -> None:
    """Append one shelf label to the labels file."""
    with open(labels_file, "a", encoding="utf-8") as labels:
        labels.write(f"{item}: {cents / 100:.2f}\n")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python app.py SERVICE_URL [LABELS_FILE]", file=sys.stderr)
        return 2
    service = argv[1]
    labels_file = argv[2] if len(argv) == 3 else "labels.txt"
    for number, item in enumerate(ITEMS, start=1):
        cents = fetch_price(service, item)
        write_label(labels_file, item, cents)
        print(f"[{number}/{len(ITEMS)}] {item}: label written", flush=True)
        time.sleep(PAUSE_SECONDS)
    print("all labels written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
