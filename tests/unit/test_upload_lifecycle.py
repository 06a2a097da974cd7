"""The inbox's rule for uploads no look named: in the template, and as the local stack
hands it to moto (prefix and tag filter together)."""

from pathlib import Path

import boto3
from moto import mock_aws
from tryon.stages.api_requests import REFERENCED_TAG, UNREFERENCED
from tryon_local.cfn import _lifecycle_rule, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")


def unreferenced_rule() -> dict:
    rules = TEMPLATE["Resources"]["InboxBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    return next(r for r in rules if r.get("Id") == "expire-unreferenced-uploads")


def test_uploads_still_tagged_unreferenced_expire_after_the_parameters_days():
    rule = unreferenced_rule()
    assert rule["Prefix"] == "uploads/"
    assert rule["TagFilters"] == [{"Key": REFERENCED_TAG, "Value": UNREFERENCED[REFERENCED_TAG]}]
    assert rule["ExpirationInDays"] == {"Ref": "UnreferencedUploadDays"}
    assert TEMPLATE["Parameters"]["UnreferencedUploadDays"]["Default"] == 7
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1


def test_the_local_stack_gives_moto_the_prefix_and_the_tag_filter(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    rule = {**unreferenced_rule(), "ExpirationInDays": 7}
    api = _lifecycle_rule(rule)
    assert api["Filter"] == {"And": {"Prefix": "uploads/", "Tags": [
        {"Key": "tryon-referenced", "Value": "false"}]}}
    assert _lifecycle_rule({"Status": "Enabled", "TagFilters": [
        {"Key": "a", "Value": "b"}]})["Filter"] == {"Tag": {"Key": "a", "Value": "b"}}
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="inbox")
        s3.put_bucket_lifecycle_configuration(Bucket="inbox",
                                              LifecycleConfiguration={"Rules": [api]})
        [stored] = s3.get_bucket_lifecycle_configuration(Bucket="inbox")["Rules"]
    assert stored["Filter"]["And"]["Prefix"] == "uploads/"
    assert stored["Expiration"] == {"Days": 7}
