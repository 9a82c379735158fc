"""Ingest a batch: run the parent workflow ``ingest`` and print its result as JSON.

    INGEST_LLM_URL=http://127.0.0.1:PORT python ingest.py BATCH [--documents 1000]

runs the workflow ``ingest-BATCH``: it enqueues one summary workflow per
document on the queue ``summaries`` and waits for all of them. Workers
(``autodurable worker --import pipeline``) do the summarizing; this process
only fans out and gathers. Kill it at any moment and run the same command
again: it resumes, enqueues nothing twice, and waits for what is left. Once
the batch is done, the command prints the recorded result and does nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import autodurable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pipeline.py sits next to this file
from pipeline import ingest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", help="the batch's name (the workflow is ingest-BATCH)")
    parser.add_argument("--documents", type=int, default=1000, help="documents in the batch")
    args = parser.parse_args()
    batch = {"name": args.batch, "documents": args.documents}
    result = autodurable.options(ingest, workflow_id=f"ingest-{args.batch}")(batch)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
