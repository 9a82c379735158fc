"""Spot-check audit of the warehouse inventory.

Picks a random sample of items, counts each one, records the count in the
``audits`` table and in a log file, and prints a summary.

    python inventory_audit.py inventory.db

The database is created with a demo stock list if it has no items yet.

Settings (environment):
    AUDIT_LOG     the log file (default ./audit.log)
    AUDIT_SAMPLE  how many items to audit at most (default 5)
    AUDIT_PAUSE   seconds to wait between items (default 0)
"""

import os
import random
import sqlite3
import sys
import time
from datetime import datetime

DEMO_STOCK = [
    ("A-100", "hex bolt M6", 480),
    ("A-101", "hex bolt M8", 350),
    ("A-200", "wing nut M6", 120),
    ("B-310", "washer 8 mm", 900),
    ("B-311", "washer 10 mm", 640),
    ("C-020", "hinge, brass", 75),
    ("C-021", "hinge, steel", 90),
    ("D-400", "cable tie 200 mm", 1500),
    ("D-401", "cable tie 300 mm", 1100),
    ("E-007", "padlock 40 mm", 32),
    ("E-008", "padlock 50 mm", 18),
    ("F-550", "shelf bracket", 210),
]

LOG_FILE = os.environ.get("AUDIT_LOG", "audit.log")
SAMPLE = int(os.environ.get("AUDIT_SAMPLE", "5"))
PAUSE = float(os.environ.get("AUDIT_PAUSE", "0"))


def prepare_database(db):
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS items (sku TEXT PRIMARY KEY, name TEXT, on_hand INTEGER)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS audits (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " sku TEXT, expected INTEGER, counted INTEGER, counted_at TEXT)"
    )
    if conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0:
        print(f"{db} has no items: adding the demo stock list")
        conn.executemany("INSERT INTO items VALUES (?, ?, ?)", DEMO_STOCK)
    conn.commit()
    conn.close()


def load_items(db):
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT sku, name, on_hand FROM items ORDER BY sku").fetchall()
    conn.close()
    return rows


def count_item(expected):
    # Stands in for somebody counting the shelf: usually right, sometimes not.
    return expected + random.choice([0, 0, 0, 0, -1, -2, 1])


def record_count(db, sku, expected, counted):
    counted_at = datetime.now().isoformat(timespec="milliseconds")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO audits (sku, expected, counted, counted_at) VALUES (?, ?, ?, ?)",
            (sku, expected, counted, counted_at),
        )
    return counted_at


def main():
    if len(sys.argv) != 2:
        print("usage: inventory_audit.py INVENTORY_DB", file=sys.stderr)
        sys.exit(2)
    db = sys.argv[1]
    prepare_database(db)
    items = load_items(db)

    sample = random.sample(items, min(SAMPLE, len(items)))
    print(f"auditing {len(sample)} of {len(items)} items: {', '.join(s[0] for s in sample)}")

    started = time.time()
    differences = []
    for n, (sku, name, on_hand) in enumerate(sample, start=1):
        counted = count_item(on_hand)
        counted_at = record_count(db, sku, on_hand, counted)
        with open(LOG_FILE, "a") as log:
            log.write(f"{counted_at} {sku} expected={on_hand} counted={counted}\n")
        print(f"[{n}/{len(sample)}] {sku} {name}: expected {on_hand}, counted {counted}")
        if counted != on_hand:
            differences.append((sku, counted - on_hand))
        if n < len(sample):
            time.sleep(PAUSE)

    elapsed = time.time() - started
    print(f"audit finished in {elapsed:.1f} s: {len(sample)} items counted")
    if differences:
        listed = ", ".join(f"{sku} {diff:+d}" for sku, diff in differences)
        print(f"differences: {listed}")
    else:
        print("differences: none")


if __name__ == "__main__":
    main()
