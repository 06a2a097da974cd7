"""Stages run against moto's AWS emulation in process (DynamoDB, S3, SNS, SQS), for
the stage logic that lives in conditional writes: a Context as the functions build
it, with the pipeline's clock stopped where a test puts it. DynamoDB is moto's as the
local stack serves it (tryon_local.moto_dynamodb: locked, indexed, item-level
transactions)."""

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from tryon.adapters.integrations import Integrations
from tryon.adapters.messaging import Notifier
from tryon.adapters.repositories import repositories
from tryon.adapters.storage import ObjectStorage
from tryon.capacity import Capacity
from tryon.settings import Settings, Timebase
from tryon.stages.context import Context
from tryon_local import moto_dynamodb
from tryon_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[1]
DAY_ONE = 1_795_000_000.0 - 1_795_000_000.0 % 86400 + 3600  # 2026-11-18 01:00 UTC


def at(settings: Settings, moment: float) -> Settings:
    """The settings with the pipeline's clock stopped at `moment`."""
    return replace(settings, timebase=Timebase(scale=0.0, anchor=moment))


@dataclass
class MotoStages:
    ctx: Context
    s3: object
    queue_url: str
    sqs: object
    counted: list[str] = field(default_factory=list)

    def notices(self) -> list[dict]:
        """The notifications published so far (drained)."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(json.loads(m["Body"])["Message"])
                for m in messages.get("Messages", [])]


@pytest.fixture
def moto_stages(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    moto_dynamodb.install()
    with mock_aws():
        resources = load_template(ROOT / "template.yaml")["Resources"]
        for name, logical_id in (("jobs", "JobsTable"), ("credentials", "CredentialsTable")):
            table = resources[logical_id]["Properties"]
            boto3.client("dynamodb").create_table(
                TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=table["KeySchema"],
                AttributeDefinitions=table["AttributeDefinitions"],
                **({"GlobalSecondaryIndexes": table["GlobalSecondaryIndexes"]}
                   if "GlobalSecondaryIndexes" in table else {}))
        s3, sns, sqs = boto3.client("s3"), boto3.client("sns"), boto3.client("sqs")
        s3.create_bucket(Bucket="inbox")
        s3.put_bucket_versioning(Bucket="inbox", VersioningConfiguration={"Status": "Enabled"})
        topic = sns.create_topic(Name="notes")["TopicArn"]
        queue = sqs.create_queue(QueueName="notes")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        monkeypatch.setenv("JOBS_TABLE", "jobs")
        monkeypatch.setenv("CREDENTIALS_TABLE", "credentials")
        monkeypatch.setenv("DAILY_IMAGE_BUDGET", "2")
        counted: list[str] = []
        stores = repositories("jobs", boto3.resource("dynamodb"), "credentials")
        settings = at(Settings.from_env(), DAY_ONE)
        ctx = Context(settings=settings, **stores,
                      capacity=Capacity(settings, stores["limit_notes"], settings.timebase.wall),
                      integrations=Integrations("credentials"),
                      storage=ObjectStorage(s3), notifier=Notifier(topic), workflow=None,
                      expansions=None,
                      admissions=None, preparations=None, provider=None, pacer=None,
                      count=counted.append)
        yield MotoStages(ctx, s3, queue, sqs, counted)
