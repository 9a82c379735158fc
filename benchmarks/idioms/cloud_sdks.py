"""Cloud and SaaS SDKs: boto3, google-cloud-storage, Stripe, Twilio, Slack.

Constructing a client, a resource, a bucket or a blob reference makes no
request; the calls on them do.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from decimal import Decimal
from typing import Any

import boto3
import stripe
from botocore.config import Config
from botocore.exceptions import ClientError
from google.cloud import storage
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from twilio.rest import Client as TwilioClient

log = logging.getLogger(__name__)
stripe.api_key = "sk_test_placeholder"
s3 = boto3.client("s3", region_name="eu-west-1")
gcs = storage.Client(project="analytics-prod")


# --- boto3 --------------------------------------------------------------------


def make_s3(region: str):  # expect: plain
    return boto3.client("s3", region_name=region, config=Config(retries={"max_attempts": 5}))


def make_table(name: str):  # expect: plain
    return boto3.resource("dynamodb").Table(name)


def upload_bytes(bucket: str, key: str, data: bytes) -> None:  # expect: step
    s3.put_object(Bucket=bucket, Key=key, Body=data)


def read_object(bucket: str, key: str) -> bytes:  # expect: step
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def object_exists(bucket: str, key: str) -> bool:  # expect: step
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] == "404":
            return False
        raise


def list_keys(client, bucket: str, prefix: str) -> list[str]:  # expect: step
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def queue_job(queue_url: str, body: dict[str, Any]) -> str:  # expect: step
    sqs = boto3.client("sqs")
    return sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))["MessageId"]


def invoke_lambda(name: str, payload: dict[str, Any]) -> Any:  # expect: step
    lam = boto3.client("lambda")
    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    return json.loads(response["Payload"].read())


def secret(name: str) -> str:  # expect: step
    manager = boto3.session.Session().client("secretsmanager")
    return manager.get_secret_value(SecretId=name)["SecretString"]


def put_metric(namespace: str, name: str, value: float) -> None:  # expect: step
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_data(
        Namespace=namespace, MetricData=[{"MetricName": name, "Value": value}]
    )


class ArchiveStore:
    def __init__(self, bucket: str, region: str = "eu-west-1") -> None:  # expect: plain
        self.bucket = bucket
        self.s3 = boto3.client("s3", region_name=region)

    def put(self, key: str, body: bytes) -> None:  # expect: step
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def get(self, key: str) -> bytes:  # expect: step
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def copy(self, src: str, dst: str) -> None:  # expect: workflow
        self.put(dst, self.get(src))

    def key_for(self, day: date, name: str) -> str:  # expect: plain
        return f"{day:%Y/%m/%d}/{name}"


class JobTable:
    def __init__(self, table_name: str) -> None:  # expect: plain
        self.table = boto3.resource("dynamodb").Table(table_name)

    def record(self, job_id: str, status: str) -> None:  # expect: step
        self.table.put_item(Item={"pk": job_id, "status": status})

    def status(self, job_id: str) -> str | None:  # expect: step
        return self.table.get_item(Key={"pk": job_id}).get("Item", {}).get("status")

    def advance(self, job_id: str, order: list[str]) -> str:  # expect: workflow
        current = self.status(job_id) or order[0]
        following = order[min(order.index(current) + 1, len(order) - 1)]
        self.record(job_id, following)
        return following


# --- Google Cloud Storage --------------------------------------------------------


def blob_ref(bucket_name: str, path: str) -> storage.Blob:  # expect: plain
    return gcs.bucket(bucket_name).blob(path)


def upload_text(bucket_name: str, path: str, text: str) -> str:  # expect: step
    blob = gcs.bucket(bucket_name).blob(path)
    blob.upload_from_string(text, content_type="text/plain")
    return blob.public_url


def download_text(blob: storage.Blob) -> str:  # expect: step
    return blob.download_as_text()


def list_blob_names(client: storage.Client, bucket: str, prefix: str) -> list[str]:  # expect: step
    return [blob.name for blob in client.list_blobs(bucket, prefix=prefix)]


def read_manifest(bucket_name: str) -> dict[str, Any]:  # expect: workflow
    return json.loads(download_text(blob_ref(bucket_name, "manifest.json")))


# --- Stripe ---------------------------------------------------------------------


def cents(amount: Decimal) -> int:  # expect: plain
    return int((amount * 100).quantize(Decimal(1)))


def charge(customer_id: str, amount: int, key: str) -> str:  # expect: step
    intent = stripe.PaymentIntent.create(
        customer=customer_id, amount=amount, currency="eur", idempotency_key=key
    )
    return intent.id


def stripe_customer(customer_id: str) -> dict[str, Any]:  # expect: step
    return stripe.Customer.retrieve(customer_id)


class Billing:
    def __init__(self, api_key: str) -> None:  # expect: plain
        self.stripe = stripe.StripeClient(api_key)

    def refund(self, payment_intent: str) -> str:  # expect: step
        return self.stripe.refunds.create(params={"payment_intent": payment_intent}).id

    def charge_order(self, order: dict[str, Any]) -> str:  # expect: workflow
        return charge(order["customer"], cents(order["total"]), f"order-{order['id']}")

    def redo(self, payment_intent: str, order: dict[str, Any]) -> str:  # expect: workflow
        self.refund(payment_intent)
        return self.charge_order(order)


# --- Twilio and Slack -------------------------------------------------------------


def normalise_phone(raw: str) -> str:  # expect: plain
    digits = "".join(ch for ch in raw if ch.isdigit())
    return "+" + digits.lstrip("0")


class Sms:
    def __init__(self, sid: str, token: str, sender: str) -> None:  # expect: plain
        self.client = TwilioClient(sid, token)
        self.sender = sender

    def send(self, to: str, body: str) -> str:  # expect: step
        return self.client.messages.create(to=to, from_=self.sender, body=body).sid

    def send_code(self, phone: str, code: str) -> str:  # expect: workflow
        return self.send(normalise_phone(phone), f"Your code is {code}")


def slack_blocks(title: str, fields: dict[str, str]) -> list[dict[str, Any]]:  # expect: plain
    lines = "\n".join(f"*{k}*: {v}" for k, v in fields.items())
    return [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": lines}},
    ]


class Notifier:
    def __init__(self, token: str, channel: str) -> None:  # expect: plain
        self.slack = WebClient(token=token)
        self.channel = channel

    def post(self, text: str) -> str:  # expect: step
        return self.slack.chat_postMessage(channel=self.channel, text=text)["ts"]

    def reply(self, ts: str, text: str) -> None:  # expect: step
        try:
            self.slack.chat_postMessage(channel=self.channel, thread_ts=ts, text=text)
        except SlackApiError as error:
            log.warning("slack refused a reply: %s", error.response["error"])

    def card(self, title: str, fields: dict[str, str]) -> None:  # expect: step
        self.slack.chat_postMessage(channel=self.channel, blocks=slack_blocks(title, fields))

    def announce_release(self, version: str, notes: list[str]) -> str:  # expect: workflow
        ts = self.post(f"Released {version}")
        for line in notes:
            self.reply(ts, line)
        return ts


# --- workflows ----------------------------------------------------------------------


def release(version: str, notes: list[str], notifier: Notifier) -> str:  # expect: workflow
    upload_bytes("releases", f"{version}/NOTES.md", "\n".join(notes).encode())
    return notifier.announce_release(version, notes)


def nightly_backup(store: ArchiveStore, names: list[str], day: date) -> int:  # expect: workflow
    for name in names:
        store.copy(f"live/{name}", store.key_for(day, name))
    return len(names)


def publish_if_missing(bucket: str, key: str, data: bytes) -> bool:  # expect: workflow
    if object_exists(bucket, key):
        return False
    upload_bytes(bucket, key, data)
    return True


def export_keys(region: str, bucket: str) -> str:  # expect: workflow
    keys = list_keys(make_s3(region), bucket, "exports/")
    return upload_text("mirror-index", f"{bucket}.txt", "\n".join(keys))
