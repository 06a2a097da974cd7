"""Upload quotas, upload tags and version erasure on moto: the conditional counter of
the real Integrations adapter, the forms S3 would be handed, the tags lifecycle
rules filter on, and list_object_versions after an erasure."""

import base64
import dataclasses
import json

import pytest
from moto_stages import DAY_ONE
from tryon.adapters.integrations import Integration
from tryon.job_record import JobRecord, JobStatus
from tryon.jobs import utc_day
from tryon.stages.api_requests import Problem, accept_looks, upload_links

ACME = Integration("acme", 5)
MB = 1024 * 1024


@pytest.fixture
def ctx(moto_stages):
    ctx = moto_stages.ctx
    ctx.settings = dataclasses.replace(ctx.settings, inbox_bucket="inbox",
                                       upload_forms_per_day=3, upload_bytes_per_day=10 * MB)
    return ctx


def files(*sizes: int) -> list[dict]:
    return [{"name": f"f{i}.jpg", "content_type": "image/jpeg", "size": size}
            for i, size in enumerate(sizes)]


def policy(form: dict) -> dict:
    return json.loads(base64.b64decode(form["fields"]["policy"]))


def test_a_form_takes_no_more_than_the_declared_size_and_marks_the_upload_unreferenced(ctx):
    [link] = upload_links(ctx, ACME, files(1234))
    conditions = policy(link)["conditions"]
    assert ["content-length-range", 1, 1234] in conditions
    tagging = link["fields"]["tagging"]
    assert {"tagging": tagging} in conditions
    assert "<Key>tryon-referenced</Key><Value>false</Value>" in tagging


def test_forms_and_bytes_are_counted_per_day_and_refused_whole_past_a_quota(ctx):
    day = utc_day(DAY_ONE)
    upload_links(ctx, ACME, files(4 * MB, 4 * MB))
    assert ctx.integrations.uploads_used("acme", day) == {"forms": 2, "bytes": 8 * MB}
    with pytest.raises(Problem) as too_big:  # 12 MB > 10 MB: nothing counted
        upload_links(ctx, ACME, files(4 * MB))
    refusal = too_big.value
    assert (refusal.status, refusal.code) == (429, "UploadQuotaReached")
    assert "UploadBytesPerDay" in refusal.message and f"{8 * MB} used on {day}" in refusal.message
    assert f"resets at {utc_day(DAY_ONE + 86400)}T00:00:00Z" in refusal.message
    assert ctx.integrations.uploads_used("acme", day) == {"forms": 2, "bytes": 8 * MB}
    upload_links(ctx, ACME, files(MB))
    with pytest.raises(Problem) as too_many:
        upload_links(ctx, ACME, files(1))
    assert "UploadFormsPerDay" in too_many.value.message and "3 used" in too_many.value.message
    # Another integration counts on its own; the operator's override counts for acme.
    upload_links(ctx, Integration("other", 5), files(MB, MB, MB))
    ctx.integrations.create_key("acme", None, DAY_ONE)
    ctx.integrations.set_upload_quota("acme", 10, None)
    upload_links(ctx, ACME, files(MB))
    assert ctx.integrations.uploads_used("acme", day)["forms"] == 4
    with pytest.raises(KeyError):
        ctx.integrations.set_upload_quota("nobody", 1, 1)


def tags(moto_stages, key: str) -> dict:
    found = moto_stages.s3.get_object_tagging(Bucket="inbox", Key=key)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in found}


def test_looks_accepted_mark_the_uploads_they_name_referenced_and_refused_ones_do_not(
        ctx, moto_stages):
    for role in ("person", "top", "spare"):
        moto_stages.s3.put_object(Bucket="inbox", Key=f"uploads/acme/u/{role}.jpg", Body=b"x",
                                  Tagging="tryon-referenced=false")
    look = {"id": "a", "person": "uploads/acme/u/person.jpg", "top": "uploads/acme/u/top.jpg"}
    with pytest.raises(Problem):  # a missing input: refused, nothing tagged
        accept_looks(ctx, ACME, {"version": 1, "looks": [
            {**look, "bottom": "uploads/acme/u/none.jpg"}]}, "n0")
    assert tags(moto_stages, "uploads/acme/u/person.jpg") == {"tryon-referenced": "false"}
    accept_looks(ctx, ACME, {"version": 1, "looks": [look]}, "n1")
    assert tags(moto_stages, "uploads/acme/u/person.jpg") == {"tryon-referenced": "true"}
    assert tags(moto_stages, "uploads/acme/u/top.jpg") == {"tryon-referenced": "true"}
    assert tags(moto_stages, "uploads/acme/u/spare.jpg") == {"tryon-referenced": "false"}


def test_erase_deletes_every_version_and_delete_marker_of_exactly_that_key(ctx, moto_stages):
    s3 = moto_stages.s3
    for body in (b"one", b"two"):
        s3.put_object(Bucket="inbox", Key="uploads/acme/u/a.jpg", Body=body)
    s3.delete_object(Bucket="inbox", Key="uploads/acme/u/a.jpg")  # a delete marker
    s3.put_object(Bucket="inbox", Key="uploads/acme/u/a.jpg.bak", Body=b"keep")
    assert ctx.storage.erase("inbox", "uploads/acme/u/a.jpg") == {"uploads/acme/u/a.jpg": 3}
    left = s3.list_object_versions(Bucket="inbox", Prefix="uploads/acme/u/a.jpg")
    assert [v["Key"] for v in left.get("Versions", [])] == ["uploads/acme/u/a.jpg.bak"]
    assert not left.get("DeleteMarkers")
    assert ctx.storage.erase("inbox", "uploads/acme/", exact=False) == {
        "uploads/acme/u/a.jpg.bak": 1}


def test_a_record_is_cut_to_its_billing_fields_only_once_its_job_ended(ctx):
    job = JobRecord(job_id="j1", status=JobStatus.SUBMITTED, owner="acme", model="aitryon-plus",
                    inputs={"person": "s3://inbox/uploads/acme/u/p.jpg"}, look_id="anna",
                    attributes={"customer": "anna"}, timeline={"received": DAY_ONE})
    ctx.jobs.create(job, DAY_ONE)
    assert ctx.jobs.erase("j1", DAY_ONE) is None
    ctx.jobs.transition("j1", expect=[JobStatus.SUBMITTED], to=JobStatus.SUCCEEDED,
                        usage={"image_count": 1})
    erased = ctx.jobs.erase("j1", DAY_ONE + 5)
    assert erased == ctx.jobs.get("j1")
    assert (erased.status, erased.owner, erased.usage, erased.erased_at) == (
        JobStatus.SUCCEEDED, "acme", {"image_count": 1}, DAY_ONE + 5)
    assert erased.inputs is None and erased.look_id is None and erased.attributes == {}
    assert ctx.jobs.erase("j1", DAY_ONE + 9).erased_at == DAY_ONE + 5
