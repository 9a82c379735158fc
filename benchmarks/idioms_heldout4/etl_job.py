"""A nightly ETL job: partner exports listed and downloaded from S3, cleaned with pandas,
loaded into Postgres with psycopg COPY, checkpointed in SQLite, archived with gzip and
shutil, and recorded as job runs through a SQLAlchemy ORM session."""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import boto3
import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

log = logging.getLogger(__name__)

BUCKET = os.environ.get("EXPORT_BUCKET", "partner-exports")
COLUMNS = ("order_id", "partner", "sku", "quantity", "amount", "ordered_at")
RENAMES = {"OrderID": "order_id", "Partner": "partner", "SKU": "sku", "Qty": "quantity"}

s3 = boto3.client("s3")
meta_engine = create_engine(os.environ.get("ETL_META_URL", "sqlite:///etl_meta.db"))
MetaSession = sessionmaker(meta_engine)


@dataclass(frozen=True)
class JobConfig:
    bucket: str
    prefix: str
    dsn: str
    table: str
    work_dir: Path

    @classmethod
    def from_env(cls) -> JobConfig:  # expect: plain
        return cls(
            bucket=BUCKET,
            prefix=os.environ.get("EXPORT_PREFIX", "daily/"),
            dsn=os.environ["WAREHOUSE_DSN"],
            table=os.environ.get("WAREHOUSE_TABLE", "partner_orders"),
            work_dir=Path(os.environ.get("ETL_WORK_DIR", "/var/lib/etl")),
        )

    def staging_dir(self, run_date: date) -> Path:  # expect: plain
        return self.work_dir / "staging" / run_date.isoformat()


# -- S3 -----------------------------------------------------------------------------


def export_prefix(base: str, partner: str, run_date: date) -> str:  # expect: plain
    return f"{base.rstrip('/')}/{partner}/{run_date:%Y/%m/%d}/"


def is_export_key(key: str) -> bool:  # expect: plain
    name = key.rsplit("/", 1)[-1]
    return not name.startswith("_") and name.endswith((".csv", ".csv.gz"))


def list_exports(prefix: str, bucket: str = BUCKET) -> list[str]:  # expect: step
    paginator = s3.get_paginator("list_objects_v2")
    keys: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def download_export(key: str, dest_dir: Path, client=None) -> Path:  # expect: step
    client = client or s3
    target = dest_dir / Path(key).name
    client.download_file(BUCKET, key, str(target))
    return target


def read_object_text(client, bucket: str, key: str) -> str:  # expect: step
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    return body.decode("utf-8")


def upload_file(path: Path, key: str, bucket: str = BUCKET) -> None:  # expect: step
    s3.upload_file(str(path), bucket, key, ExtraArgs={"ServerSideEncryption": "AES256"})


# -- files --------------------------------------------------------------------------


def parse_csv_text(text: str) -> list[dict[str, str]]:  # expect: plain
    return list(csv.DictReader(io.StringIO(text)))


def read_rows(path: Path) -> list[dict[str, str]]:  # expect: step
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def file_digest(path: Path) -> str:  # expect: step
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def make_scratch_dir(run_date: date) -> Path:  # expect: step
    return Path(tempfile.mkdtemp(prefix=f"etl-{run_date:%Y%m%d}-"))


def archive_name(path: Path, run_date: date) -> Path:  # expect: plain
    stem = path.name.removesuffix(".gz")
    return Path(run_date.isoformat()) / f"{stem}.gz"


def compress_to(src: Path, dest: Path) -> Path:  # expect: step
    dest.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as f_in, gzip.open(dest, "wb", compresslevel=6) as f_out:
        shutil.copyfileobj(f_in, f_out)
    return dest


def archive_file(path: Path, archive_root: Path, run_date: date) -> Path:  # expect: step
    target = archive_root / archive_name(path, run_date)
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        shutil.move(path, target)
    else:
        compress_to(path, target)
        path.unlink()
    return target


# -- pandas -------------------------------------------------------------------------


def load_frame(path: Path) -> pd.DataFrame:  # expect: step
    return pd.read_csv(path, dtype=str, compression="infer", keep_default_na=False)


def frame_from_text(text: str) -> pd.DataFrame:  # expect: plain
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def clean_frame(df: pd.DataFrame) -> pd.DataFrame:  # expect: plain
    df = df.rename(columns=RENAMES)
    df["partner"] = df["partner"].str.strip().str.lower()
    df["quantity"] = pd.to_numeric(df["quantity"], errors="coerce").fillna(0).astype(int)
    df["amount"] = pd.to_numeric(df["amount"], errors="coerce")
    df["ordered_at"] = pd.to_datetime(df["ordered_at"], utc=True, errors="coerce")
    df = df.dropna(subset=["amount", "ordered_at"])
    return df.drop_duplicates(subset=["order_id"]).loc[:, list(COLUMNS)]


def daily_totals(df: pd.DataFrame) -> pd.DataFrame:  # expect: plain
    day = df["ordered_at"].dt.date.rename("day")
    return df.groupby(["partner", day]).agg(orders=("order_id", "count"), amount=("amount", "sum"))


def stamp_frame(df: pd.DataFrame) -> pd.DataFrame:  # expect: step
    return df.assign(loaded_at=pd.Timestamp.now(tz="UTC"))


def write_parquet(df: pd.DataFrame, path: Path) -> Path:  # expect: step
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False, compression="zstd")
    return path


def frame_to_csv_buffer(df: pd.DataFrame) -> io.StringIO:  # expect: plain
    buffer = io.StringIO()
    df.to_csv(buffer, index=False)
    buffer.seek(0)
    return buffer


def frame_rows(df: pd.DataFrame, columns: Sequence[str]) -> Iterator[tuple]:  # expect: plain
    yield from df.loc[:, list(columns)].itertuples(index=False, name=None)


# -- Postgres -----------------------------------------------------------------------


def copy_statement(table: str, columns: Sequence[str]) -> sql.Composed:  # expect: plain
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def delete_day_statement(table: str) -> sql.Composed:  # expect: plain
    return sql.SQL("DELETE FROM {} WHERE ordered_at::date = %s").format(sql.Identifier(table))


def copy_rows(conn: psycopg.Connection, table: str, rows: Iterable[tuple]) -> int:  # expect: step
    count = 0
    with conn.cursor() as cur, cur.copy(copy_statement(table, COLUMNS)) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def clear_day(conn, table: str, day: date) -> int:  # expect: step
    cur = conn.execute(delete_day_statement(table), (day,))
    return cur.rowcount


def load_into_postgres(dsn: str, table: str, day: date, df: pd.DataFrame) -> int:  # expect: step
    with psycopg.connect(dsn) as conn:
        clear_day(conn, table, day)
        return copy_rows(conn, table, frame_rows(df, COLUMNS))


# -- checkpoints in SQLite ----------------------------------------------------------


class CheckpointStore:
    def __init__(self, path: Path) -> None:  # expect: step
        self.conn = sqlite3.connect(path)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, digest TEXT, at REAL)"
        )

    def done(self, key: str) -> bool:  # expect: step
        row = self.conn.execute("SELECT 1 FROM checkpoints WHERE key = ?", (key,)).fetchone()
        return row is not None

    def mark(self, key: str, digest: str) -> None:  # expect: step
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (key, digest, time.time())
            )

    def pending(self, keys: Iterable[str]) -> list[str]:  # expect: workflow
        return [key for key in keys if not self.done(key)]

    def close(self) -> None:  # expect: plain
        self.conn.close()


# -- job runs through the ORM -------------------------------------------------------


class Base(DeclarativeBase):
    pass


class JobRun(Base):
    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    run_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default="running")
    rows_loaded: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class RunRepository:
    def latest(self, session: Session, job: str) -> JobRun | None:  # expect: step
        stmt = select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc()).limit(1)
        return session.scalars(stmt).first()

    def record(self, session: Session, run: JobRun) -> None:  # expect: plain
        session.add(run)

    def finish(self, session: Session, run: JobRun, rows: int) -> None:  # expect: step
        run.status = "done"
        run.rows_loaded = rows
        run.finished_at = datetime.now(UTC)
        session.commit()

    def failures_since(self, session: Session, since: datetime) -> list[JobRun]:  # expect: step
        stmt = select(JobRun).where(JobRun.status == "failed", JobRun.started_at >= since)
        return list(session.scalars(stmt))


def start_run(session: Session, job: str, run_date: date) -> JobRun:  # expect: step
    run = JobRun(job=job, run_date=run_date, started_at=datetime.now(UTC))
    RunRepository().record(session, run)
    session.flush()
    return run


def recent_failures(days: int = 7) -> list[JobRun]:  # expect: step
    since = datetime.now(UTC) - timedelta(days=days)
    with MetaSession() as session:
        return RunRepository().failures_since(session, since)


def publish_done(redis_client, run_date: date, rows: int) -> None:  # expect: step
    redis_client.publish("etl.done", json.dumps({"date": run_date.isoformat(), "rows": rows}))


# -- orchestration ------------------------------------------------------------------


def yesterday() -> date:  # expect: step
    return date.today() - timedelta(days=1)


def process_export(key: str, cfg: JobConfig, run_date: date) -> tuple:  # expect: workflow
    local = download_export(key, cfg.staging_dir(run_date))
    df = stamp_frame(clean_frame(load_frame(local)))
    rows = load_into_postgres(cfg.dsn, cfg.table, run_date, df)
    write_parquet(df, cfg.work_dir / "parquet" / f"{local.stem}.parquet")
    digest = file_digest(local)
    archive_file(local, cfg.work_dir / "archive", run_date)
    return key, digest, rows


def process_all(keys, cfg: JobConfig, run_date: date, checkpoints) -> int:  # expect: workflow
    total = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(process_export, key, cfg, run_date) for key in keys]
        for future in as_completed(futures):
            key, digest, rows = future.result()
            checkpoints.mark(key, digest)
            total += rows
    return total


def summarise_to_parquet(path: Path, out: Path) -> Path:  # expect: workflow
    return write_parquet(daily_totals(clean_frame(load_frame(path))).reset_index(), out)


def verify_archive(path: Path, expected_digest: str) -> bool:  # expect: workflow
    matches = file_digest(path) == expected_digest
    if not matches:
        log.error("digest mismatch for %s", path)
    return matches


def fetch_exports(keys: Sequence[str], dest_dir: Path) -> list[Path]:  # expect: workflow
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(partial(download_export, dest_dir=dest_dir), keys))


def run_job(cfg: JobConfig, run_date: date) -> int:  # expect: workflow
    checkpoints = CheckpointStore(cfg.work_dir / "checkpoints.db")
    try:
        keys = [key for key in list_exports(cfg.prefix, cfg.bucket) if is_export_key(key)]
        total = process_all(checkpoints.pending(keys), cfg, run_date, checkpoints)
    finally:
        checkpoints.close()
    with MetaSession() as session:
        run = start_run(session, "partner_orders", run_date)
        RunRepository().finish(session, run, total)
    return total


def backfill(cfg: JobConfig, start: date, end: date) -> int:  # expect: workflow
    total, day = 0, start
    while day <= end:
        total += run_job(cfg, day)
        day += timedelta(days=1)
    return total


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:  # expect: plain
    parser = argparse.ArgumentParser(description="Load partner order exports.")
    parser.add_argument("--date", type=date.fromisoformat, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:  # expect: workflow
    args = parse_args(argv)
    cfg = JobConfig.from_env()
    run_date = args.date or yesterday()
    total = run_job(cfg, run_date)
    log.info("loaded %d rows for %s", total, run_date)
    return 0
