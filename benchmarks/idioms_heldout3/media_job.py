"""Media ingest job: walk an inbox, unpack archives, transcode with ffmpeg, make thumbnails
with ImageMagick, hash everything, upload the outputs to S3 or GCS, write a JSON manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
from google.cloud import storage

s3 = boto3.client("s3")

AUDIO_EXTS = {".wav", ".mp3", ".flac", ".m4a"}
VIDEO_EXTS = {".mp4", ".mov", ".mkv"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


@dataclass
class Entry:
    name: str
    digest: str
    output: str
    kind: str
    duration: float | None = None

    def to_json(self) -> dict[str, Any]:  # expect: plain
        return asdict(self)


# --- pure: names, arguments, hashes, manifests ------------------------------------------------


def sha256_bytes(data: bytes) -> str:  # expect: plain
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:  # expect: plain
    return sha256_bytes(text.encode("utf-8"))


def kind_of(path: Path) -> str | None:  # expect: plain
    suffix = path.suffix.lower()
    if suffix in AUDIO_EXTS or suffix in VIDEO_EXTS:
        return "media"
    if suffix in IMAGE_EXTS:
        return "image"
    return None


def output_path(src: Path, out_dir: Path, suffix: str) -> Path:  # expect: plain
    return out_dir / src.with_suffix(suffix).name


def ffmpeg_args(src: Path, dst: Path, bitrate: str = "128k") -> list[str]:  # expect: plain
    codec = ["-vn", "-c:a", "aac", "-b:a", bitrate]
    return ["ffmpeg", "-nostdin", "-y", "-i", str(src), *codec, str(dst)]


def convert_args(src: Path, dst: Path, width: int = 320) -> list[str]:  # expect: plain
    return ["convert", str(src), "-thumbnail", f"{width}x", "-strip", str(dst)]


def object_key(prefix: str, digest: str, name: str) -> str:  # expect: plain
    return f"{prefix.strip('/')}/{digest[:2]}/{digest}/{name}"


def safe_member(name: str) -> bool:  # expect: plain
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def build_manifest(entries: list[Entry], job_id: str) -> dict[str, Any]:  # expect: plain
    return {
        "job": job_id,
        "count": len(entries),
        "entries": [entry.to_json() for entry in sorted(entries, key=lambda e: e.name)],
    }


def manifest_text(manifest: dict[str, Any]) -> str:  # expect: plain
    return json.dumps(manifest, indent=2, sort_keys=True)


def already_processed(manifest: dict[str, Any], digest: str) -> bool:  # expect: plain
    return any(entry["digest"] == digest for entry in manifest.get("entries", []))


def describe_failure(error: subprocess.CalledProcessError) -> str:  # expect: plain
    stderr = error.stderr.decode(errors="replace") if error.stderr else ""
    tail = "\n".join(stderr.splitlines()[-5:])
    return f"{error.cmd[0]} exited {error.returncode}: {tail}"


# --- disk ---------------------------------------------------------------------------------------


def walk_inputs(root: Path) -> list[Path]:  # expect: step
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def hash_file(path: Path, chunk_size: int = 1 << 20) -> str:  # expect: step
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def extract_zip(archive: Path, dest: Path) -> list[Path]:  # expect: step
    extracted = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or not safe_member(info.filename):
                continue
            extracted.append(Path(zf.extract(info, dest)))
    return extracted


def extract_tar(archive: Path, dest: Path) -> list[Path]:  # expect: step
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if m.isfile() and safe_member(m.name)]
        tf.extractall(dest, members=members, filter="data")
    return [dest / m.name for m in members]


def pack_outputs(paths: list[Path], archive: Path) -> Path:  # expect: step
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in paths:
            zf.write(path, arcname=path.name)
    return archive


def scratch_dir(prefix: str = "media-") -> Path:  # expect: step
    return Path(tempfile.mkdtemp(prefix=prefix))


def cleanup(path: Path) -> None:  # expect: step
    shutil.rmtree(path, ignore_errors=True)


def prepare_output(out_dir: Path) -> Path:  # expect: step
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def copy_original(src: Path, archive_dir: Path) -> Path:  # expect: step
    return Path(shutil.copy2(src, archive_dir / src.name))


def write_manifest(manifest: dict[str, Any], path: Path) -> Path:  # expect: step
    with path.open("w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
    return path


def read_manifest(path: Path) -> dict[str, Any]:  # expect: step
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def new_job_id() -> str:  # expect: step
    return f"job-{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:6]}"


# --- processes ----------------------------------------------------------------------------------


def transcode_audio(src: Path, dst: Path) -> Path:  # expect: step
    subprocess.run(ffmpeg_args(src, dst), check=True, capture_output=True)
    return dst


def make_thumbnail(src: Path, dst: Path, width: int = 320) -> Path:  # expect: step
    subprocess.run(convert_args(src, dst, width), check=True, capture_output=True)
    return dst


def probe_duration(src: Path) -> float:  # expect: step
    out = subprocess.check_output(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(src)],
        text=True,
    )
    return float(out.strip())


# --- object storage -----------------------------------------------------------------------------


def upload_s3(path: Path, bucket: str, key: str, client=None) -> str:  # expect: step
    (client or s3).upload_file(str(path), bucket, key, ExtraArgs={"ACL": "private"})
    return f"s3://{bucket}/{key}"


@lru_cache(maxsize=8)
def gcs_bucket(name: str) -> storage.Bucket:  # expect: plain
    return storage.Client().bucket(name)


def upload_gcs(bucket: storage.Bucket, path: Path, key: str) -> str:  # expect: step
    blob = bucket.blob(key)
    blob.upload_from_filename(str(path))
    return f"gs://{bucket.name}/{key}"


class GcsPublisher:
    def __init__(self, bucket_name: str, prefix: str) -> None:  # expect: plain
        self.bucket = storage.Client().bucket(bucket_name)
        self.prefix = prefix.strip("/")

    def blob_name(self, path: Path) -> str:  # expect: plain
        return f"{self.prefix}/{path.name}"

    def exists(self, name: str) -> bool:  # expect: step
        return self.bucket.blob(name).exists()

    def publish(self, path: Path) -> str:  # expect: step
        blob = self.bucket.blob(self.blob_name(path))
        blob.upload_from_filename(str(path))
        return blob.name

    def publish_all(self, paths: list[Path]) -> list[str]:  # expect: workflow
        return [self.publish(p) for p in paths if not self.exists(self.blob_name(p))]


# --- the job ------------------------------------------------------------------------------------


def process_file(src: Path, out_dir: Path) -> Entry | None:  # expect: workflow
    kind = kind_of(src)
    if kind is None:
        return None
    digest = hash_file(src)
    if kind == "media":
        dst = transcode_audio(src, output_path(src, out_dir, ".m4a"))
        return Entry(src.name, digest, str(dst), kind, probe_duration(dst))
    dst = make_thumbnail(src, output_path(src, out_dir, ".thumb.png"))
    return Entry(src.name, digest, str(dst), kind)


def process_archive(  # expect: workflow
    archive: Path, out_dir: Path, job_id: str
) -> dict[str, Any]:
    work = scratch_dir()
    try:
        if archive.suffix == ".zip":
            members = extract_zip(archive, work)
        else:
            members = extract_tar(archive, work)
        entries = [e for e in (process_file(m, out_dir) for m in members) if e is not None]
        return build_manifest(entries, job_id)
    finally:
        cleanup(work)


def parallel_transcode(  # expect: workflow
    sources: list[Path], out_dir: Path, workers: int = 4
) -> list[Path]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(transcode_audio, src, output_path(src, out_dir, ".m4a")) for src in sources
        ]
        return [future.result() for future in futures]


def publish(  # expect: workflow
    manifest: dict[str, Any], out_dir: Path, bucket: str, prefix: str
) -> list[str]:
    urls = []
    for entry in manifest["entries"]:
        key = object_key(prefix, entry["digest"], Path(entry["output"]).name)
        urls.append(upload_s3(Path(entry["output"]), bucket, key))
    manifest_path = write_manifest(manifest, out_dir / "manifest.json")
    urls.append(upload_s3(manifest_path, bucket, f"{prefix.strip('/')}/{manifest['job']}.json"))
    return urls


def run_job(inbox: Path, out_dir: Path, bucket: str) -> dict[str, Any]:  # expect: workflow
    job_id = new_job_id()
    prepare_output(out_dir)
    manifests = [
        process_archive(path, out_dir, job_id)
        for path in walk_inputs(inbox)
        if path.suffix in {".zip", ".tar", ".gz", ".tgz"}
    ]
    merged = build_manifest(
        [Entry(**e) for m in manifests for e in m["entries"]],
        job_id,
    )
    publish(merged, out_dir, bucket, prefix="ingest")
    return merged


def archive_inbox(inbox: Path, archive_dir: Path) -> int:  # expect: workflow
    prepare_output(archive_dir)
    return len([copy_original(path, archive_dir) for path in walk_inputs(inbox)])
