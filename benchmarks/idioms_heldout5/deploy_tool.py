"""Build a release tarball from a git checkout and roll it out to the app servers over SSH."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import posixpath
import shlex
import shutil
import subprocess
import tarfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import git
import paramiko
import yaml

log = logging.getLogger("deploy")

DEFAULT_WORKERS = 4
SSH_TIMEOUT = 20
COMMAND_TIMEOUT = 300
MIN_FREE_BYTES = 2 * 1024**3


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    user: str
    path: str
    port: int = 22
    service: str = "app"

    @property
    def address(self) -> str:  # expect: plain
        return f"{self.user}@{self.host}:{self.port}"


@dataclass
class DeployConfig:
    app: str
    targets: list[Target]
    build_command: list[str]
    keep_releases: int = 5
    exclude: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)


# -- configuration -------------------------------------------------------------


def config_from_dict(data: dict[str, Any]) -> DeployConfig:  # expect: plain
    defaults = data.get("defaults", {})
    targets = [Target(**{**defaults, **raw}) for raw in data["targets"]]
    if not targets:
        raise DeployError("no targets configured")
    return DeployConfig(
        app=data["app"],
        targets=targets,
        build_command=shlex.split(data.get("build", "make release")),
        keep_releases=int(data.get("keep_releases", 5)),
        exclude=list(data.get("exclude", [])),
        environment={k: str(v) for k, v in data.get("environment", {}).items()},
    )


def parse_config(text: str) -> DeployConfig:  # expect: plain
    return config_from_dict(yaml.safe_load(text))


def load_config(path: Path) -> DeployConfig:  # expect: step
    with path.open(encoding="utf-8") as fh:
        return config_from_dict(yaml.safe_load(fh))


def config_path(repo_dir: Path, environment: str) -> Path:  # expect: plain
    return repo_dir / "deploy" / f"{environment}.yaml"


def ssh_key_file() -> str | None:  # expect: plain
    return os.environ.get("DEPLOY_SSH_KEY") or None


def read_version(repo_dir: Path) -> str:  # expect: step
    return (repo_dir / "VERSION").read_text(encoding="utf-8").strip()


# -- git -----------------------------------------------------------------------


def git_output(repo_dir: Path, *args: str) -> str:  # expect: step
    result = subprocess.run(
        ["git", *args], cwd=repo_dir, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def current_commit(repo_dir: Path) -> str:  # expect: workflow
    return git_output(repo_dir, "rev-parse", "HEAD")


def ensure_clean_tree(repo_dir: Path) -> None:  # expect: workflow
    dirty = git_output(repo_dir, "status", "--porcelain")
    if dirty:
        raise DeployError(f"working tree has uncommitted changes:\n{dirty}")


def update_checkout(repo_dir: Path, branch: str) -> str:  # expect: step
    repo = git.Repo(repo_dir)
    repo.git.checkout(branch)
    repo.remotes.origin.pull()
    return repo.head.commit.hexsha


def tag_release(repo: git.Repo, tag: str, message: str) -> None:  # expect: step
    repo.create_tag(tag, message=message)
    repo.remotes.origin.push(tag)


def fetch_tags(repo: git.Repo) -> None:  # expect: step
    repo.remotes.origin.fetch(tags=True, prune=True)


def git_describe(repo: git.Repo) -> str:  # expect: step
    return repo.git.describe("--tags", "--always", "--dirty")


def changed_files(repo_dir: Path, since: str) -> list[str]:  # expect: workflow
    return git_output(repo_dir, "diff", "--name-only", f"{since}..HEAD").splitlines()


def release_tag(app: str, version: str, commit: str) -> str:  # expect: plain
    return f"{app}-v{version}-{commit[:8]}"


def tag_deployed_release(repo_dir: Path, app: str) -> str:  # expect: step
    repo = git.Repo(repo_dir)
    fetch_tags(repo)
    tag = release_tag(app, read_version(repo_dir), repo.head.commit.hexsha)
    if tag not in repo.tags:
        tag_release(repo, tag, f"Deployed {tag} ({git_describe(repo)})")
    return tag


# -- build ---------------------------------------------------------------------


def run_build(repo_dir: Path, command: list[str], env: dict[str, str]) -> None:  # expect: step
    subprocess.run(command, cwd=repo_dir, env={**os.environ, **env}, check=True)


def stage_release(repo_dir: Path, staging: Path, exclude: list[str]) -> Path:  # expect: step
    if staging.exists():
        shutil.rmtree(staging)
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", *exclude)
    shutil.copytree(repo_dir, staging, ignore=ignore)
    return staging


def copy_shared_files(repo_dir: Path, staging: Path, names: list[str]) -> None:  # expect: step
    for name in names:
        source = repo_dir / "shared" / name
        if source.is_file():
            shutil.copy2(source, staging / name)


def write_revision(staging: Path, commit: str) -> None:  # expect: step
    (staging / "REVISION").write_text(commit + "\n", encoding="utf-8")


def utc_stamp() -> str:  # expect: step
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")


def archive_name(app: str, commit: str, stamp: str) -> str:  # expect: plain
    return f"{app}-{stamp}-{commit[:12]}"


def archive_release(staging: Path, out_dir: Path, name: str) -> Path:  # expect: step
    archive = out_dir / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging, arcname=name)
    return archive


def checksum_bytes(data: bytes) -> str:  # expect: plain
    return hashlib.sha256(data).hexdigest()


def checksum_file(path: Path, chunk_size: int = 1 << 20) -> str:  # expect: step
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def build_release(  # expect: workflow
    repo_dir: Path, config: DeployConfig, out_dir: Path, branch: str
) -> tuple[Path, str]:
    ensure_clean_tree(repo_dir)
    commit = update_checkout(repo_dir, branch)
    run_build(repo_dir, config.build_command, config.environment)
    name = archive_name(config.app, commit, utc_stamp())
    staging = stage_release(repo_dir, out_dir / "staging" / name, config.exclude)
    copy_shared_files(repo_dir, staging, ["robots.txt", "favicon.ico"])
    write_revision(staging, commit)
    return archive_release(staging, out_dir, name), name


# -- remote --------------------------------------------------------------------


def open_ssh(target: Target, key_file: str | None = None) -> paramiko.SSHClient:  # expect: step
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        target.host,
        port=target.port,
        username=target.user,
        key_filename=key_file,
        timeout=SSH_TIMEOUT,
    )
    return client


def run_remote(ssh: paramiko.SSHClient, command: str) -> str:  # expect: step
    _, stdout, stderr = ssh.exec_command(command, timeout=COMMAND_TIMEOUT)
    status = stdout.channel.recv_exit_status()
    if status != 0:
        raise DeployError(f"{command!r} exited {status}: {stderr.read().decode().strip()}")
    return stdout.read().decode()


def upload_archive(ssh, archive: Path, remote_path: str) -> None:  # expect: step
    with ssh.open_sftp() as sftp:
        sftp.put(str(archive), remote_path)


def remote_disk_free(ssh, path: str) -> int:  # expect: step
    _, stdout, _ = ssh.exec_command(f"df -Pk {shlex.quote(path)} | tail -1")
    return int(stdout.read().split()[3]) * 1024


def remote_checksum(ssh, remote_path: str) -> str:  # expect: workflow
    return run_remote(ssh, f"sha256sum {shlex.quote(remote_path)}").split()[0]


def previous_release(ssh, target: Target) -> str | None:  # expect: step
    releases = shlex.quote(posixpath.join(target.path, "releases"))
    _, stdout, _ = ssh.exec_command(f"ls -1t {releases} | sed -n 2p")
    name = stdout.read().decode().strip()
    return posixpath.join(target.path, "releases", name) if name else None


def fetch_remote_revision(ssh: paramiko.SSHClient, target: Target) -> str:  # expect: workflow
    return run_remote(ssh, f"cat {shlex.quote(posixpath.join(target.path, 'current/REVISION'))}")


def release_dir(target: Target, name: str) -> str:  # expect: plain
    return posixpath.join(target.path, "releases", name)


def unpack_command(remote_archive: str, release_path: str) -> str:  # expect: plain
    parent = posixpath.dirname(release_path)
    return (
        f"mkdir -p {shlex.quote(parent)} && "
        f"tar -xzf {shlex.quote(remote_archive)} -C {shlex.quote(parent)} && "
        f"rm -f {shlex.quote(remote_archive)}"
    )


def activate_command(target: Target, release_path: str) -> str:  # expect: plain
    current = posixpath.join(target.path, "current")
    return (
        f"ln -sfn {shlex.quote(release_path)} {shlex.quote(current)} && "
        f"sudo systemctl reload {shlex.quote(target.service)}"
    )


def prune_command(target: Target, keep: int) -> str:  # expect: plain
    releases = shlex.quote(posixpath.join(target.path, "releases"))
    return f"ls -1dt {releases}/* | tail -n +{keep + 1} | xargs -r rm -rf"


def activate_release(ssh: paramiko.SSHClient, target: Target, release: str):  # expect: workflow
    run_remote(ssh, activate_command(target, release))
    log.info("%s now serves %s", target.name, posixpath.basename(release))


def deploy_to_target(  # expect: workflow
    target: Target, archive: Path, name: str, expected_sha: str, keep: int
) -> str:
    ssh = open_ssh(target, ssh_key_file())
    try:
        if remote_disk_free(ssh, target.path) < MIN_FREE_BYTES:
            raise DeployError(f"{target.name}: not enough disk space")
        remote_archive = posixpath.join("/tmp", archive.name)
        upload_archive(ssh, archive, remote_archive)
        if remote_checksum(ssh, remote_archive) != expected_sha:
            raise DeployError(f"{target.name}: checksum mismatch after upload")
        release = release_dir(target, name)
        run_remote(ssh, unpack_command(remote_archive, release))
        activate_release(ssh, target, release)
        run_remote(ssh, prune_command(target, keep))
    finally:
        ssh.close()
    return target.name


def rollback_target(target: Target) -> str:  # expect: workflow
    ssh = open_ssh(target, ssh_key_file())
    try:
        previous = previous_release(ssh, target)
        if previous is None:
            raise DeployError(f"{target.name}: no earlier release to roll back to")
        activate_release(ssh, target, previous)
        return fetch_remote_revision(ssh, target).strip()
    finally:
        ssh.close()


def rollback_all(config: DeployConfig) -> dict[str, str]:  # expect: workflow
    with ThreadPoolExecutor(max_workers=DEFAULT_WORKERS) as pool:
        revisions = pool.map(rollback_target, config.targets)
        return {t.name: rev for t, rev in zip(config.targets, revisions, strict=True)}


def host_uptime(target: Target) -> str:  # expect: workflow
    ssh = open_ssh(target, ssh_key_file())
    try:
        return run_remote(ssh, "uptime -p").strip()
    finally:
        ssh.close()


def check_hosts(config: DeployConfig) -> dict[str, str]:  # expect: workflow
    with ThreadPoolExecutor(max_workers=DEFAULT_WORKERS) as pool:
        uptimes = list(pool.map(host_uptime, config.targets))
    return {target.name: uptime for target, uptime in zip(config.targets, uptimes, strict=True)}


def deploy_all(  # expect: workflow
    config: DeployConfig, archive: Path, name: str, workers: int = DEFAULT_WORKERS
) -> dict[str, str]:
    expected = checksum_file(archive)
    results: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(deploy_to_target, t, archive, name, expected, config.keep_releases): t
            for t in config.targets
        }
        for future in as_completed(futures):
            target = futures[future]
            try:
                future.result()
                results[target.name] = "ok"
            except Exception as exc:
                log.exception("deploy to %s failed", target.address)
                results[target.name] = f"failed: {exc}"
    return results


# -- local housekeeping --------------------------------------------------------


def prepare_out_dir(out_dir: Path) -> Path:  # expect: step
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def acquire_lock(lock_path: Path) -> None:  # expect: step
    try:
        fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise DeployError(f"another deploy holds {lock_path}") from None
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)


def release_lock(lock_path: Path) -> None:  # expect: step
    lock_path.unlink(missing_ok=True)


def local_archives(out_dir: Path) -> list[Path]:  # expect: step
    return sorted(out_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)


def prune_local(out_dir: Path, keep: int) -> list[Path]:  # expect: step
    old = local_archives(out_dir)[:-keep] if keep else local_archives(out_dir)
    for path in old:
        path.unlink()
    shutil.rmtree(out_dir / "staging", ignore_errors=True)
    return old


def write_deploy_log(out_dir: Path, name: str, results: dict[str, str]) -> None:  # expect: step
    entry = {"release": name, "results": results, "at": datetime.now(timezone.utc).isoformat()}
    with (out_dir / "deploys.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def notify_chat(text: str) -> None:  # expect: step
    webhook = os.environ.get("DEPLOY_WEBHOOK_URL")
    if not webhook:
        return
    body = json.dumps({"text": text}).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(webhook, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def log_plan(config: DeployConfig, branch: str) -> None:  # expect: plain
    log.info("deploying %s from %s to %d targets", config.app, branch, len(config.targets))
    for target in config.targets:
        log.info("  -> %s (%s)", target.name, target.address)


def log_results(results: dict[str, str]) -> None:  # expect: plain
    failed = {name: status for name, status in results.items() if status != "ok"}
    log.info("%d/%d targets deployed", len(results) - len(failed), len(results))
    for name, status in sorted(failed.items()):
        log.error("%s: %s", name, status)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:  # expect: plain
    parser = argparse.ArgumentParser(prog="deploy", description=__doc__)
    parser.add_argument("environment", choices=["staging", "production"])
    parser.add_argument("--repo", default=os.environ.get("DEPLOY_REPO", "."))
    parser.add_argument("--branch", default="main")
    parser.add_argument("--out", default=os.environ.get("DEPLOY_OUT", "build/releases"))
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check-only", action="store_true")
    mode.add_argument("--rollback", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:  # expect: workflow
    args = parse_args(argv)
    repo_dir, out_dir = Path(args.repo), Path(args.out)
    config = load_config(config_path(repo_dir, args.environment))
    if args.check_only:
        for name, uptime in check_hosts(config).items():
            log.info("%s: %s", name, uptime)
        return 0
    if args.rollback:
        revisions = rollback_all(config)
        notify_chat(f"{config.app} rolled back: {revisions}")
        return 0
    log_plan(config, args.branch)
    prepare_out_dir(out_dir)
    lock = out_dir / "deploy.lock"
    acquire_lock(lock)
    try:
        archive, name = build_release(repo_dir, config, out_dir, args.branch)
        results = deploy_all(config, archive, name, args.workers)
    finally:
        release_lock(lock)
    write_deploy_log(out_dir, name, results)
    prune_local(out_dir, config.keep_releases)
    log_results(results)
    if all(status == "ok" for status in results.values()):
        tag = tag_deployed_release(repo_dir, config.app)
        notify_chat(f"{config.app} {tag} is live on {len(results)} hosts")
        return 0
    notify_chat(f"{config.app} {name}: deploy failed on some hosts, see the log")
    return 1
