"""The operator's parts the e2e tests (against the local stack) cannot reach: every
shape of an ended job's look rebuilt for `tryon jobs retry`, the progress bar, and
finding a deployed stack by name."""

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from tryon.job_record import JobRecord
from tryon.manifest import parse_manifest
from tryon_local.runtime import FAKE_CREDENTIALS
from tryon_ops import operations
from tryon_ops.operations import OperatorError, progress_line, retry_look

INBOX = "inbox"


def ended(**fields) -> JobRecord:
    return JobRecord.from_item({"job_id": "old1", "status": "FAILED", "look_id": "anna-dress",
            "model": "qwen-image-3.0", "requested_model": "aitryon-plus",
            "inputs": {"person": f"s3://{INBOX}/models/anna.jpg",
                       "top": f"s3://{INBOX}/catalog/dress.jpg"},
            "top_is_dress": True, "parameters": {"resolution": 1280, "restore_face": False},
            "instruction": "Keep the belt.", "attributes": {"retailer": "acme"},
            "error": {"code": "InvalidPerson", "message": "no person"}, **fields})


def test_the_look_comes_back_as_it_was_asked_with_a_link_to_the_old_job():
    look = retry_look(ended(), INBOX)
    assert look == {"version": 1, "id": "anna-dress", "person": "models/anna.jpg",
                    "dress": "catalog/dress.jpg", "model": "aitryon-plus", "resolution": 1280,
                    "restore_face": False, "instruction": "Keep the belt.",
                    "attributes": {"retailer": "acme", "retry_of": "old1"}}
    [parsed] = parse_manifest(json.dumps(look).encode(), "aitryon-plus").looks
    assert parsed.top_is_dress and parsed.model == "aitryon-plus"


def test_a_kept_garment_and_a_retry_of_a_retry():
    job = ended(status="TIMED_OUT", top_is_dress=None, keep="bottom", instruction=None,
                requested_model=None, attributes={"retry_of": "older"},
                inputs={"person": f"s3://{INBOX}/p.jpg", "top": f"s3://{INBOX}/t.jpg"})
    look = retry_look(job, INBOX)
    assert (look["top"], look["keep"], look["model"]) == ("t.jpg", "bottom", "qwen-image-3.0")
    assert "instruction" not in look and look["attributes"] == {"retry_of": "old1"}


@pytest.mark.parametrize(("job", "says"), [
    (ended(status="SUCCEEDED"), "SUCCEEDED: nothing to retry"),
    (ended(status="QUEUED"), "is QUEUED, not ended"),
    (ended(inputs=None, error={"code": "InvalidManifest"}), "no look to retry"),
    (ended(inputs={"person": "s3://elsewhere/p.jpg"}), "not in the inbox"),
    (ended(attributes={f"a{i}": "x" for i in range(7)}), "no room for retry_of"),
])
def test_what_cannot_be_retried_says_why(job, says):
    with pytest.raises(OperatorError, match=says):
        retry_look(job, INBOX)


def test_the_progress_bar_shows_succeeded_failed_and_open_jobs():
    counts = {"total": 4, "recorded": 4, "received": 0, "queued": 1, "admitted": 0,
              "submitting": 0, "submitted": 1, "succeeded": 1, "failed": 1, "timed_out": 0,
              "canceled": 0}
    assert progress_line({"counts": counts}, width=8) == (
        "[##xx....] 2/4 ended: 1 queued, 1 submitted, 1 succeeded, 1 failed")
    assert progress_line({"counts": counts}, width=0).startswith("2/4 ended")


REAL_SESSION = boto3.Session  # the tests patch boto3.Session itself


class StubbedSession:
    """boto3.Session for `--stack`: CloudFormation and Lambda answer from stubs (the
    rest are real clients that are never called)."""

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        self.real = REAL_SESSION(region_name="eu-west-1", **FAKE_CREDENTIALS)
        self.stubbed = {name: self.real.client(name) for name in ("cloudformation", "lambda")}
        self.stubs = {name: Stubber(client) for name, client in self.stubbed.items()}

    def client(self, name: str):
        return self.stubbed.get(name) or self.real.client(name)

    def resource(self, name: str):
        return self.real.resource(name)


def test_a_deployed_stack_is_found_by_name_through_its_outputs_and_api_function(monkeypatch):
    made: list[StubbedSession] = []

    def session(**kwargs) -> StubbedSession:
        made.append(StubbedSession(**kwargs))
        cloudformation, lam = made[-1].stubs["cloudformation"], made[-1].stubs["lambda"]
        cloudformation.add_response("describe_stacks", {"Stacks": [{
            "StackName": "tryon", "CreationTime": datetime.now(UTC),
            "StackStatus": "UPDATE_COMPLETE", "Outputs": [
                {"OutputKey": "ApiUrl", "OutputValue": "https://api.example/v1"},
                {"OutputKey": "InboxBucketName", "OutputValue": "tryon-inbox"}]}]},
            {"StackName": "tryon"})
        cloudformation.add_response("describe_stack_resource", {"StackResourceDetail": {
            "LogicalResourceId": "ApiFunction", "PhysicalResourceId": "tryon-ApiFunction-1",
            "ResourceType": "AWS::Lambda::Function", "ResourceStatus": "CREATE_COMPLETE",
            "LastUpdatedTimestamp": datetime.now(UTC)}},
            {"StackName": "tryon", "LogicalResourceId": "ApiFunction"})
        lam.add_response("get_function_configuration", {"Environment": {"Variables": {
            "JOBS_TABLE": "tryon-jobs", "INBOX_BUCKET": "tryon-inbox",
            "DAILY_IMAGE_BUDGET": "250"}}}, {"FunctionName": "tryon-ApiFunction-1"})
        for stub in made[-1].stubs.values():
            stub.activate()
        return made[-1]

    monkeypatch.setattr(operations.boto3, "Session", session)
    target = operations.deployed_target("tryon", region="eu-west-1", profile="ops")
    assert made[0].kwargs == {"profile_name": "ops", "region_name": "eu-west-1"}
    assert target.outputs["InboxBucketName"] == "tryon-inbox"
    assert target.api_url == "https://api.example/v1" and target.name == "stack tryon"
    settings = target.ctx.settings
    assert (settings.jobs_table, settings.daily_image_budget) == ("tryon-jobs", 250)
    assert settings.timebase.scale == 1  # a deployed stack runs on the wall clock
    for stub in made[0].stubs.values():
        stub.assert_no_pending_responses()


def test_a_stack_that_cannot_be_read_is_a_clear_refusal(monkeypatch):
    def session(**kwargs) -> StubbedSession:
        made = StubbedSession(**kwargs)
        made.stubs["cloudformation"].add_client_error(
            "describe_stacks", "ValidationError", "Stack with id nope does not exist")
        made.stubs["cloudformation"].activate()
        return made

    monkeypatch.setattr(operations.boto3, "Session", session)
    with pytest.raises(OperatorError, match=r"cannot read stack 'nope'.*does not exist"):
        operations.deployed_target("nope")


def test_the_operator_allows_and_revokes_a_principal_alone_and_lists_it(moto_stages):
    role = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_x_1"
    kept = "arn:aws:iam::123456789012:role/AWSReservedSSO_x_1"
    target = operations.Target("the test stack", None, moto_stages.ctx, {}, None)
    with pytest.raises(OperatorError, match="no integration named 'acme'; create it"):
        operations.allow_principal(target, "acme", role)
    operations.create_key(target, "acme", None, role)
    operations.create_key(target, "shop", None, None)
    assert operations.allow_principal(target, "shop", role) == {
        "name": "shop", "principal": kept, "left": "acme"}
    listing = operations.format_keys(operations.list_keys(target))
    assert listing.count(f"IAM principal {kept}") == 1
    assert listing.index(f"IAM principal {kept}") > listing.index("shop:")
    assert operations.revoke_principal(target, "shop", role) == {"name": "shop",
                                                                 "principal": kept}
    assert "IAM principal" not in operations.format_keys(operations.list_keys(target))
    with pytest.raises(OperatorError, match="cannot revoke: integration 'shop' has no IAM"):
        operations.revoke_principal(target, "shop", role)


def test_quotas_adding_up_past_the_budget_are_warned_of(moto_stages):
    target = operations.Target("the test stack", None, moto_stages.ctx, {}, None)
    operations.create_key(target, "acme", 1, None)  # the test stack's budget: 2 a day
    assert operations.quota_warning(target, operations.list_keys(target)) is None
    operations.create_key(target, "shop", 2, None)
    warning = operations.quota_warning(target, operations.list_keys(target))
    assert "add up to 3 images, more than the stack's daily budget of 2" in warning
    operations.revoke(target, "shop", None)  # a revoked integration spends nothing
    assert operations.quota_warning(target, operations.list_keys(target)) is None
