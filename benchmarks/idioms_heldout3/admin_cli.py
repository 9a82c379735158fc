"""Internal admin CLI: a REST client over requests.Session with pagination, SSH commands on
hosts through paramiko, confirmations typed at the terminal, subcommands dispatched by name.
"""

from __future__ import annotations

import argparse
import getpass
import os
import random
import secrets
import shlex
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paramiko
import requests
from sqlalchemy import select

from .notify_worker import SMS_FROM, render, twilio_client
from .warehouse import engine, stock

TICKET_NAMESPACE = uuid.UUID("6f1c8a52-2d7e-4f0b-9a51-3c2f7e1d0b44")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --- pure helpers ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:  # expect: plain
    parser = argparse.ArgumentParser(prog="opsctl")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("users")
    restart = sub.add_parser("restart")
    restart.add_argument("host")
    restart.add_argument("service")
    canary = sub.add_parser("canary")
    canary.add_argument("service")
    canary.add_argument("hosts", nargs="+")
    stock_cmd = sub.add_parser("stock")
    stock_cmd.add_argument("sku")
    page = sub.add_parser("page")
    page.add_argument("summary")
    page.add_argument("--severity", default="P2")
    reset = sub.add_parser("reset-password")
    reset.add_argument("user")
    return parser


def parse_duration(value: str) -> timedelta:  # expect: plain
    amount, unit = int(value[:-1]), value[-1]
    return timedelta(**{UNITS[unit]: amount})


def window_start(duration: timedelta, now: datetime) -> datetime:  # expect: plain
    return now - duration


def maintenance_window(start: datetime, hours: int) -> tuple[datetime, datetime]:  # expect: plain
    return start, start + timedelta(hours=hours)


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:  # expect: plain
    widths = {c: max([len(c), *(len(str(r.get(c, ""))) for r in rows)]) for c in columns}
    head = "  ".join(c.ljust(widths[c]) for c in columns)
    body = ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join([head, *body])


def parse_ticket_id(raw: str) -> uuid.UUID:  # expect: plain
    return uuid.UUID(raw.strip())


def deterministic_ticket(name: str) -> uuid.UUID:  # expect: plain
    return uuid.uuid5(TICKET_NAMESPACE, name)


def confirm_phrase(host: str) -> str:  # expect: plain
    return f"restart {host.split('.')[0]}"


def parse_df(output: str) -> dict[str, str]:  # expect: plain
    lines = output.strip().splitlines()
    if len(lines) < 2:
        return {}
    header, values = lines[0].split(), lines[1].split()
    return dict(zip(header, values, strict=False))


def session_headers(token: str) -> dict[str, str]:  # expect: plain
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def ssh_client_options(host: str, user: str) -> dict[str, Any]:  # expect: plain
    return {"hostname": host, "username": user, "timeout": 10, "allow_agent": True}


def page_offsets(total: int, page_size: int) -> list[tuple[int, int]]:  # expect: plain
    return [(offset, min(page_size, total - offset)) for offset in range(0, total, page_size)]


def audit_event(action: str, actor: str, when: datetime) -> dict[str, Any]:  # expect: plain
    return {"action": action, "actor": actor, "at": when.isoformat()}


# --- nondeterminism and the terminal ----------------------------------------------------------


def new_ticket_id() -> str:  # expect: step
    return str(uuid.uuid4())


def pick_canary(hosts: list[str]) -> str:  # expect: step
    return random.choice(hosts)


def temp_password(length: int = 18) -> str:  # expect: step
    return secrets.token_urlsafe(length)


def window_from_now(hours: int) -> tuple[datetime, datetime]:  # expect: step
    return maintenance_window(datetime.now(UTC), hours)


def confirm(prompt: str) -> bool:  # expect: step
    return input(f"{prompt} [y/N] ").strip().lower() == "y"


def confirm_destructive(host: str) -> bool:  # expect: step
    typed = input(f"Type '{confirm_phrase(host)}' to continue: ")
    return typed.strip() == confirm_phrase(host)


def ask_password(user: str) -> str:  # expect: step
    return getpass.getpass(f"Password for {user}: ")


# --- REST API client ------------------------------------------------------------------------


class AdminApi:
    def __init__(self, base_url: str, token: str) -> None:  # expect: plain
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(session_headers(token))

    def _url(self, path: str) -> str:  # expect: plain
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, **params: Any) -> dict[str, Any]:  # expect: step
        response = self.session.get(self._url(path), params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:  # expect: step
        response = self.session.post(self._url(path), json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def list_all(self, path: str, page_size: int = 100) -> list[dict[str, Any]]:  # expect: workflow
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(path, limit=page_size, cursor=cursor)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def list_users_linked(self, page_size: int = 100) -> list[dict[str, Any]]:  # expect: step
        users: list[dict[str, Any]] = []
        url: str | None = self._url("/users")
        params: dict[str, Any] | None = {"per_page": page_size}
        while url:
            response = self.session.get(url, params=params, timeout=10)
            response.raise_for_status()
            users.extend(response.json())
            url = response.links.get("next", {}).get("url")
            params = None
        return users

    def prepared_delete(self, path: str) -> requests.PreparedRequest:  # expect: plain
        headers = dict(self.session.headers)
        return requests.Request("DELETE", self._url(path), headers=headers).prepare()

    def send_prepared(self, prepared: requests.PreparedRequest) -> int:  # expect: step
        return self.session.send(prepared, timeout=10).status_code

    def delete(self, path: str) -> int:  # expect: workflow
        return self.send_prepared(self.prepared_delete(path))


def make_api() -> AdminApi:  # expect: plain
    return AdminApi(
        os.environ.get("ADMIN_API_URL", "https://admin.example.internal/api"),
        os.environ.get("ADMIN_API_TOKEN", ""),
    )


def fetch_all_hosts(  # expect: step
    session: requests.Session, base_url: str, page_size: int = 50
) -> list[dict]:
    first = session.get(f"{base_url}/hosts", params={"limit": 1}, timeout=10).json()
    hosts: list[dict] = []
    for offset, limit in page_offsets(first["total"], page_size):
        page = session.get(f"{base_url}/hosts", params={"offset": offset, "limit": limit})
        hosts.extend(page.json()["items"])
    return hosts


def fetch_host(sess, base_url, host_id):  # expect: step
    response = sess.get(f"{base_url}/hosts/{host_id}", timeout=10)
    response.raise_for_status()
    return response.json()


def record_audit(api: AdminApi, action: str) -> dict[str, Any]:  # expect: step
    actor = os.environ.get("USER", "unknown")
    return api.post("/audit", audit_event(action, actor, datetime.now(UTC)))


# --- SSH ------------------------------------------------------------------------------------


def ssh_connect(  # expect: step
    host: str, user: str, key_path: str | None = None
) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(**ssh_client_options(host, user), key_filename=key_path)
    return client


def run_remote(client: paramiko.SSHClient, command: str) -> tuple[int, str]:  # expect: step
    _, stdout, _ = client.exec_command(command, timeout=60)
    output = stdout.read().decode("utf-8", errors="replace")
    return stdout.channel.recv_exit_status(), output


def restart_service(host: str, service: str, user: str = "ops") -> int:  # expect: workflow
    client = ssh_connect(host, user)
    try:
        code, _ = run_remote(client, f"sudo systemctl restart {shlex.quote(service)}")
        return code
    finally:
        client.close()


def disk_usage(  # expect: workflow
    hosts: list[str], user: str = "ops"
) -> dict[str, dict[str, str]]:
    usage = {}
    for host in hosts:
        client = ssh_connect(host, user)
        try:
            _, output = run_remote(client, "df -h /")
            usage[host] = parse_df(output)
        finally:
            client.close()
    return usage


class RemoteHost:
    def __init__(self, client: paramiko.SSHClient, name: str) -> None:  # expect: plain
        self.client = client
        self.name = name

    def uptime(self) -> str:  # expect: step
        _, stdout, _ = self.client.exec_command("uptime")
        return stdout.read().decode().strip()

    def tail_log(self, path: str, lines: int = 50) -> str:  # expect: workflow
        return run_remote(self.client, f"tail -n {lines} {shlex.quote(path)}")[1]

    def describe(self) -> str:  # expect: plain
        return f"{self.name} via {type(self.client).__name__}"


# --- subcommands ----------------------------------------------------------------------------


def cmd_users(args: argparse.Namespace, api: AdminApi) -> str:  # expect: workflow
    return format_table(api.list_all("/users"), ["id", "email", "role"])


def cmd_restart(args: argparse.Namespace, api: AdminApi) -> str:  # expect: workflow
    if not confirm_destructive(args.host):
        return "aborted"
    code = restart_service(args.host, args.service)
    record_audit(api, f"restart {args.service} on {args.host}")
    return f"exit {code}"


def cmd_canary(args: argparse.Namespace, api: AdminApi) -> str:  # expect: workflow
    host = pick_canary(args.hosts)
    code = restart_service(host, args.service)
    record_audit(api, f"canary {args.service} on {host}")
    return f"{host}: exit {code}"


def cmd_stock(args: argparse.Namespace, api: AdminApi) -> str:  # expect: step
    with engine.connect() as conn:
        rows = conn.execute(
            select(stock.c.bin, stock.c.quantity).where(stock.c.sku == args.sku)
        ).all()
    return format_table([{"bin": b, "quantity": q} for b, q in rows], ["bin", "quantity"])


def cmd_page(args: argparse.Namespace, api: AdminApi) -> str:  # expect: step
    ticket = new_ticket_id()
    body = render("page", severity=args.severity, summary=args.summary, ticket=ticket)
    message = twilio_client.messages.create(
        to=os.environ.get("ONCALL_PHONE", "+15550142"), from_=SMS_FROM, body=body
    )
    return f"paged ({message.sid}), ticket {ticket}"


def cmd_reset_password(args: argparse.Namespace, api: AdminApi) -> str:  # expect: workflow
    password = temp_password()
    api.post(f"/users/{args.user}/password", {"password": password, "must_change": True})
    return f"temporary password for {args.user}: {password}"


COMMANDS: dict[str, Callable[[argparse.Namespace, AdminApi], str]] = {
    "users": cmd_users,
    "restart": cmd_restart,
    "canary": cmd_canary,
    "stock": cmd_stock,
    "page": cmd_page,
    "reset-password": cmd_reset_password,
}


def command_table() -> dict[str, Callable[[argparse.Namespace, AdminApi], str]]:  # expect: plain
    return COMMANDS


def main(argv: list[str] | None = None) -> str:  # expect: workflow
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args, make_api())


if __name__ == "__main__":
    print(main())
