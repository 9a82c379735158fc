"""`shipit`, a release and deploy tool for one service: argparse sub-commands
dispatched through a handler table, GitPython, the Docker SDK, subprocess,
pathlib, shutil and tarfile, an S3 client and an httpx client imported from
other modules of the project, and a thread pool over hosts."""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import docker
import git

from .etl_job import S3
from .llm_agent import HTTP as chat_http

ARTIFACT_BUCKET = os.environ.get("SHIPIT_BUCKET", "shipit-artifacts")
CHAT_WEBHOOK = os.environ.get("SHIPIT_WEBHOOK", "https://chat.example.com/hooks/releases")
VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def sh(*cmd: str, cwd: Path | None = None) -> str:  # expect: step
    done = subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def run_tests(root: Path) -> bool:  # expect: workflow
    sh("python", "-m", "pytest", "-q", "-x", cwd=root)
    return True


def bump(version: str, part: str = "patch") -> str:  # expect: plain
    match = VERSION.match(version.strip())
    if match is None:
        raise ValueError(f"not a version: {version!r}")
    major, minor, patch = (int(g) for g in match.groups())
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def version_file(root: Path) -> Path:  # expect: plain
    return root / "src" / root.name / "VERSION"


def read_version(root: Path) -> str:  # expect: step
    return version_file(root).read_text(encoding="utf-8").strip()


def write_version(root: Path, version: str) -> None:  # expect: step
    version_file(root).write_text(version + "\n", encoding="utf-8")


def open_repo(root: Path) -> git.Repo:  # expect: step
    return git.Repo(root, search_parent_directories=True)


def head_sha(repo: git.Repo, short: bool = True) -> str:  # expect: step
    sha = repo.head.commit.hexsha
    return sha[:12] if short else sha


def ensure_clean(repo) -> None:  # expect: step
    if repo.is_dirty(untracked_files=True):
        raise SystemExit("the working tree has uncommitted changes")


def commit_and_tag(repo: git.Repo, root: Path, version: str) -> str:  # expect: step
    repo.index.add([str(version_file(root).relative_to(root))])
    commit = repo.index.commit(f"Release {version}")
    repo.create_tag(f"v{version}", ref=commit, message=f"Release {version}")
    return commit.hexsha


def push_release(repo: git.Repo, version: str, remote: str = "origin") -> None:  # expect: step
    origin = repo.remote(remote)
    origin.push()
    origin.push(f"refs/tags/v{version}")


def changelog(repo: git.Repo, since_tag: str | None) -> list[str]:  # expect: step
    rev = f"{since_tag}..HEAD" if since_tag else "HEAD"
    return [str(c.summary) for c in repo.iter_commits(rev, no_merges=True)]


def format_changelog(version: str, lines: list[str]) -> str:  # expect: plain
    return "\n".join([f"## {version}", "", *(f"- {line}" for line in lines)])


def announce(version: str, notes: str) -> None:  # expect: step
    chat_http.post(CHAT_WEBHOOK, json={"text": f"Released {version}\n\n{notes}"}).raise_for_status()


def release(root: Path, part: str, push: bool) -> str:  # expect: workflow
    repo = open_repo(root)
    ensure_clean(repo)
    previous = read_version(root)
    version = bump(previous, part)
    write_version(root, version)
    commit_and_tag(repo, root, version)
    if push:
        push_release(repo, version)
        announce(version, format_changelog(version, changelog(repo, f"v{previous}")))
    return version


def docker_client() -> docker.DockerClient:  # expect: step
    return docker.from_env(timeout=120)


def pinned_client(  # expect: plain
    base_url: str = "unix:///var/run/docker.sock",
) -> docker.DockerClient:
    return docker.DockerClient(base_url=base_url, version="1.43")


def image_ref(registry: str, name: str, tag: str) -> str:  # expect: plain
    return f"{registry.rstrip('/')}/{name}:{tag}"


def build_image(client: docker.DockerClient, root: Path, ref: str) -> str:  # expect: step
    image, _logs = client.images.build(path=str(root), tag=ref, rm=True, pull=True)
    return image.id


def push_image(client, ref: str) -> list[str]:  # expect: step
    errors = []
    for line in client.images.push(ref, stream=True, decode=True):
        if "error" in line:
            errors.append(line["error"])
    return errors


def running_services(  # expect: step
    client: docker.DockerClient, label: str = "shipit.service"
) -> dict[str, str]:
    return {c.labels[label]: c.short_id for c in client.containers.list(filters={"label": label})}


class Deployer:
    def __init__(  # expect: plain
        self, root: Path, registry: str, client: docker.DockerClient | None = None
    ) -> None:
        self.root = root
        self.registry = registry
        self._client = client

    @property
    def client(self) -> docker.DockerClient:  # expect: workflow
        if self._client is None:
            self._client = docker_client()
        return self._client

    def ref(self, sha: str) -> str:  # expect: plain
        return image_ref(self.registry, self.root.name, sha)

    def ship(self, sha: str) -> str:  # expect: workflow
        ref = self.ref(sha)
        build_image(self.client, self.root, ref)
        errors = push_image(self.client, ref)
        if errors:
            raise RuntimeError("; ".join(errors))
        return ref

    def roll(self, service: str, ref: str) -> str:  # expect: step
        old = self.client.containers.get(service)
        old.stop(timeout=20)
        old.remove()
        labels = {"shipit.service": service}
        new = self.client.containers.run(ref, name=service, detach=True, labels=labels)
        return new.short_id


def probe(url: str, timeout: float = 2.0) -> bool:  # expect: step
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def wait_healthy(  # expect: step
    url: str,
    deadline_s: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> bool:
    end = clock() + deadline_s
    while clock() < end:
        if probe(url):
            return True
        pause(1.0)
    return False


def artifact_name(name: str, version: str) -> str:  # expect: plain
    return f"{name}-{version}.tar.gz"


def make_workdir() -> Path:  # expect: step
    return Path(tempfile.mkdtemp(prefix="shipit-"))


def bundle(root: Path, workdir: Path, version: str) -> Path:  # expect: step
    target = workdir / artifact_name(root.name, version)
    with tarfile.open(target, "w:gz") as tar:
        tar.add(root / "dist", arcname=root.name)
    return target


def upload_artifact(path: Path, bucket: str = ARTIFACT_BUCKET) -> str:  # expect: step
    key = f"{path.name.split('-')[0]}/{path.name}"
    S3.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


def cleanup(path: Path) -> None:  # expect: step
    shutil.rmtree(path, ignore_errors=True)


def publish(root: Path, version: str) -> str:  # expect: workflow
    workdir = make_workdir()
    try:
        return upload_artifact(bundle(root, workdir, version))
    finally:
        cleanup(workdir)


def env_file(root: Path, stage: str) -> Path:  # expect: plain
    return root / "deploy" / f"{stage}.env"


def copy_env_files(src: Path, dest: Path) -> list[Path]:  # expect: step
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(p, dest / p.name)) for p in sorted(src.glob("*.env"))]


def deploy_id() -> str:  # expect: step
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def stable_id(service: str, version: str) -> str:  # expect: plain
    return uuid.uuid5(uuid.NAMESPACE_DNS, f"{version}.{service}.shipit").hex


def canary_hosts(hosts: list[str], share: float, seed: int) -> list[str]:  # expect: plain
    rng = random.Random(seed)
    return rng.sample(hosts, max(1, round(len(hosts) * share)))


def pick_canary(hosts: list[str]) -> str:  # expect: step
    return random.choice(hosts)


def human_duration(seconds: float) -> str:  # expect: plain
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def remote_restart(host: str, service: str) -> str:  # expect: step
    cmd = ["ssh", host, "sudo", "systemctl", "restart", service]
    return subprocess.check_output(cmd, text=True, timeout=60)


def restart_everywhere(hosts: list[str], service: str) -> dict[str, str]:  # expect: workflow
    results: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {pool.submit(remote_restart, host, service): host for host in hosts}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
    return results


def cmd_release(args: argparse.Namespace) -> int:  # expect: workflow
    root = Path(args.root)
    run_tests(root)
    version = release(root, args.part, push=not args.no_push)
    publish(root, version)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:  # expect: workflow
    root = Path(args.root)
    deployer = Deployer(root, args.registry)
    ref = deployer.ship(head_sha(open_repo(root)))
    for service in args.services:
        deployer.roll(service, ref)
    return 0 if wait_healthy(args.health_url) else 1


def cmd_status(args: argparse.Namespace) -> int:  # expect: workflow
    services = running_services(docker_client())
    return 0 if set(args.services) <= set(services) else 1


def build_parser() -> argparse.ArgumentParser:  # expect: plain
    parser = argparse.ArgumentParser(prog="shipit")
    sub = parser.add_subparsers(required=True)
    rel = sub.add_parser("release")
    rel.add_argument("--root", default=".")
    rel.add_argument("--part", choices=("major", "minor", "patch"), default="patch")
    rel.add_argument("--no-push", action="store_true")
    rel.set_defaults(handler=cmd_release)
    dep = sub.add_parser("deploy")
    dep.add_argument("--root", default=".")
    dep.add_argument("--registry", default="registry.example.com")
    dep.add_argument("--health-url", default="http://localhost:8080/healthz")
    dep.add_argument("services", nargs="+")
    dep.set_defaults(handler=cmd_deploy)
    status = sub.add_parser("status")
    status.add_argument("services", nargs="+")
    status.set_defaults(handler=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:  # expect: workflow
    args = build_parser().parse_args(argv)
    return args.handler(args)
