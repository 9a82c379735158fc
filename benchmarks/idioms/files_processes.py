"""Files and processes: open, pathlib, shutil, os, tempfile, subprocess, git, SSH, sqlite3.

Path arithmetic (``/``, ``.parent``, ``.with_suffix()``, ``os.path.join``)
touches nothing; reading, writing, listing, moving and running do.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import git
import paramiko
import pysftp

DATA_DIR = Path(__file__).parent / "data"


# --- open and pathlib ------------------------------------------------------------


def read_config(path: str) -> dict[str, Any]:  # expect: step
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_json(path: Path, data: Any) -> None:  # expect: step
    path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def append_line(path: str, line: str) -> None:  # expect: step
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")


def report_path(run_id: str) -> Path:  # expect: plain
    return DATA_DIR / "reports" / f"{run_id}.csv"


def write_report(run_id: str, rows: Iterable[list[Any]]) -> Path:  # expect: step
    path = report_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def sidecar(path: Path) -> Path:  # expect: plain
    return path.with_suffix(".meta.json")


def read_sidecar(path: Path) -> dict[str, Any]:  # expect: step
    return json.loads(sidecar(path).read_text())


def load_rows(path: str) -> list[dict[str, str]]:  # expect: step
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


def sibling(path: Path, name: str) -> Path:  # expect: plain
    return path.parent / name


def read_sibling(path: Path, name: str) -> str:  # expect: step
    return (path.parent / name).read_text()


def read_versioned(root: Path, version: int) -> bytes:  # expect: step
    target = root / "releases" / f"v{version}" / "artefact"
    return target.with_suffix(".tar.gz").read_bytes()


def config_files(root: Path) -> list[Path]:  # expect: step
    return sorted(p for p in root.glob("**/*.toml") if p.is_file())


def ensure_dir(path: Path) -> Path:  # expect: step
    path.mkdir(parents=True, exist_ok=True)
    return path


def iter_lines(lines: Iterable[str]) -> Iterator[str]:  # expect: plain
    for line in lines:
        if line.strip() and not line.startswith("#"):
            yield line.strip()


# --- shutil, os, tempfile --------------------------------------------------------


def archive(src: Path, dest_dir: Path) -> Path:  # expect: step
    dest_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.move(str(src), dest_dir / src.name))


def bundle(folder: str, name: str) -> str:  # expect: step
    return shutil.make_archive(name, "zip", folder)


def clean_dir(path: str) -> None:  # expect: step
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def list_inputs(folder: str, ext: str = ".csv") -> list[str]:  # expect: step
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(ext))


def newest(paths: list[str]) -> str:  # expect: step
    return max(paths, key=os.path.getmtime)


def remove_if_exists(path: str) -> bool:  # expect: step
    if os.path.exists(path):
        os.remove(path)
        return True
    return False


def output_name(src: str) -> str:  # expect: plain
    base, _ = os.path.splitext(os.path.basename(src))
    return os.path.join("out", base + ".mp3")


def scratch_copy(path: str) -> str:  # expect: step
    fd, tmp = tempfile.mkstemp(suffix=os.path.splitext(path)[1])
    os.close(fd)
    shutil.copyfile(path, tmp)
    return tmp


def atomic_write(path: Path, text: str) -> None:  # expect: step
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


# --- subprocess ---------------------------------------------------------------------


def convert(src: str, dst: str) -> None:  # expect: step
    subprocess.run(["ffmpeg", "-y", "-i", src, dst], check=True, capture_output=True)


def git_head() -> str:  # expect: step
    return subprocess.check_output(["git", "rev-parse", "HEAD"], text=True).strip()


def run_tool(args: list[str], cwd: str | None = None) -> tuple[int, str]:  # expect: step
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    return proc.returncode, out


def build_wheel(project: str) -> list[str]:  # expect: step
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["python", "-m", "build", "--wheel", "--outdir", out, project], check=True)
        return os.listdir(out)


def lint_command(paths: list[str], fix: bool = False) -> list[str]:  # expect: plain
    return ["ruff", "check", *(["--fix"] if fix else []), *paths]


def lint(paths: list[str]) -> bool:  # expect: step
    return subprocess.run(lint_command(paths), check=False).returncode == 0


# --- GitPython, paramiko, pysftp ----------------------------------------------------


def commit_all(repo_path: str, message: str) -> str:  # expect: step
    repo = git.Repo(repo_path)
    repo.git.add(A=True)
    return repo.index.commit(message).hexsha


def clone(url: str, dest: str) -> git.Repo:  # expect: step
    return git.Repo.clone_from(url, dest, depth=1)


def changed_files(repo: git.Repo) -> list[str]:  # expect: step
    return [diff.a_path for diff in repo.index.diff(None)]


def make_ssh() -> paramiko.SSHClient:  # expect: plain
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    return client


def ssh_run(host: str, command: str) -> str:  # expect: step
    client = make_ssh()
    client.connect(host, username="deploy")
    try:
        _, stdout, _ = client.exec_command(command)
        return stdout.read().decode()
    finally:
        client.close()


def sftp_fetch(host: str, remote: str, local: str) -> None:  # expect: step
    with pysftp.Connection(host, username="etl", private_key="/etc/etl/id_ed25519") as sftp:
        sftp.get(remote, local)


class Deployer:
    def __init__(self, ssh: paramiko.SSHClient, app_dir: str) -> None:  # expect: plain
        self.ssh = ssh
        self.app_dir = app_dir

    def restart(self, service: str) -> int:  # expect: step
        _, stdout, _ = self.ssh.exec_command(f"sudo systemctl restart {service}")
        return stdout.channel.recv_exit_status()

    def upload(self, local: str, remote: str) -> None:  # expect: step
        with self.ssh.open_sftp() as sftp:
            sftp.put(local, remote)

    def deploy(self, artefact: str, service: str) -> int:  # expect: workflow
        self.upload(artefact, f"{self.app_dir}/{os.path.basename(artefact)}")
        return self.restart(service)


# --- sqlite3 -------------------------------------------------------------------------


def open_db(path: str) -> sqlite3.Connection:  # expect: step
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def insert_rows(conn: sqlite3.Connection, rows: list[tuple[str, str]]) -> int:  # expect: step
    with conn:
        cur = conn.executemany("INSERT INTO items(id, name) VALUES (?, ?)", rows)
    return cur.rowcount


def item_names(conn) -> list[str]:  # expect: step
    return [row["name"] for row in conn.execute("SELECT name FROM items ORDER BY name")]


class KeyValueCache:
    def __init__(self, path: str) -> None:  # expect: step
        self.conn = sqlite3.connect(path)
        self.conn.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")

    def get(self, key: str) -> str | None:  # expect: step
        row = self.conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:  # expect: step
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def get_or_compute(self, key: str, path: str) -> str:  # expect: workflow
        value = self.get(key)
        if value is None:
            value = json.dumps(read_config(path))
            self.put(key, value)
        return value


# --- plain helpers and workflows ---------------------------------------------------


def chunk(rows: list[Any], size: int) -> list[list[Any]]:  # expect: plain
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def safe_name(name: str) -> str:  # expect: plain
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def transcode_all(folder: str) -> int:  # expect: workflow
    sources = list_inputs(folder, ".wav")
    for src in sources:
        convert(src, output_name(src))
    return len(sources)


def nightly(folder: str, run_id: str) -> Path:  # expect: workflow
    rows = [row for path in list_inputs(folder) for row in load_rows(path)]
    return write_report(run_id, [[row["id"], row["total"]] for row in rows])


def import_items(db_path: str, csv_path: str) -> int:  # expect: workflow
    conn = open_db(db_path)
    rows = [(row["id"], row["name"]) for row in load_rows(csv_path)]
    return sum(insert_rows(conn, batch) for batch in chunk(rows, 500))


def release(repo_path: str, version: str) -> str:  # expect: workflow
    if not lint([repo_path]):
        raise RuntimeError("lint failed")
    write_json(Path(repo_path) / "version.json", {"version": version})
    return commit_all(repo_path, f"Release {version}")


def rotate(path: Path) -> Path:  # expect: step
    previous = sidecar(path)
    if path.exists():
        write_json(previous, read_sidecar(path))
    return previous
