"""The daily image budget against moto's DynamoDB and SNS (in process): counted
once per look, atomically, refused past the limit with one notice a day, and
open again when the UTC day turns or the operator raises it."""

import json
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from tryon.adapters.messaging import Notifier
from tryon.adapters.store import JobStore
from tryon.jobs import Look, unique_looks
from tryon.settings import Settings, Timebase
from tryon.stages.admission import within_budget
from tryon.stages.context import Context
from tryon_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
DAY_ONE = 1_795_000_000.0 - 1_795_000_000.0 % 86400 + 3600  # 01:00 UTC


def at(settings: Settings, moment: float) -> Settings:
    """The settings with the pipeline's clock stopped at `moment`."""
    return replace(settings, timebase=Timebase(scale=0.0, anchor=moment))


@pytest.fixture
def budget(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        table = load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"]
        boto3.client("dynamodb").create_table(
            TableName="jobs", BillingMode="PAY_PER_REQUEST", KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"])
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="notes")["TopicArn"]
        queue = sqs.create_queue(QueueName="notes")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        monkeypatch.setenv("JOBS_TABLE", "jobs")
        monkeypatch.setenv("DAILY_IMAGE_BUDGET", "2")
        settings = at(Settings.from_env(), DAY_ONE)
        store = JobStore("jobs")
        counted: list[str] = []
        ctx = Context(settings=settings, store=store, storage=None, notifier=Notifier(topic),
                      workflow=None, admissions=None, preparations=None, provider=None,
                      pacer=None, count=counted.append)
        for i in range(6):
            store.create({"job_id": f"job-{i}", "status": "RECEIVED"}, DAY_ONE)

        def notices() -> list[dict]:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
            return [json.loads(json.loads(m["Body"])["Message"])
                    for m in messages.get("Messages", [])]

        yield ctx, notices, counted


def test_each_look_is_counted_once_and_the_day_is_refused_past_its_budget(budget):
    ctx, notices, counted = budget
    assert within_budget(ctx, "job-0") and within_budget(ctx, "job-1")
    assert within_budget(ctx, "job-0")  # a repeat keeps its place, and costs nothing more
    assert not within_budget(ctx, "job-2") and not within_budget(ctx, "job-3")
    assert ctx.store.budget_spent("2026-11-18")["spent"] == 2
    [notice] = notices()  # one a day, however many looks wait
    assert notice["event"] == "budget.reached" and notice["day"] == "2026-11-18"
    assert (notice["budget"], notice["spent"]) == (2, 2)
    assert counted == ["BudgetReached"]


def test_the_budget_opens_again_when_the_day_turns_or_it_is_raised(budget):
    ctx, notices, _ = budget
    assert within_budget(ctx, "job-0") and within_budget(ctx, "job-1")
    assert not within_budget(ctx, "job-2")
    ctx.store.set_budget_limit(3)  # the operator raises it
    assert within_budget(ctx, "job-2") and not within_budget(ctx, "job-3")
    ctx.store.set_budget_limit(None)
    ctx.settings = at(ctx.settings, DAY_ONE + 86400)  # the next UTC day
    assert within_budget(ctx, "job-3") and within_budget(ctx, "job-4")
    assert not within_budget(ctx, "job-5")
    assert [n["day"] for n in notices()] == ["2026-11-18", "2026-11-19"]


def test_a_look_asked_twice_in_one_upload_is_made_once():
    a = Look("a", "p.jpg", top="t.jpg", attributes=(("sku", "1"),))
    b = Look("b", "p.jpg", bottom="b.jpg")
    again = Look("a2", "p.jpg", top="t.jpg", attributes=(("sku", "2"),))
    other_model = Look("a3", "p.jpg", top="t.jpg", model="qwen-image-3.0")
    looks, repeats = unique_looks([a, b, again, other_model])
    assert looks == [a, b, other_model] and repeats == {"a": ["a2"]}
