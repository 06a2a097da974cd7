"""Erasure on the in-memory fakes: what goes, what stays, and what is refused."""

import dataclasses

import pytest
from fakes import INBOX, RESULTS
from tryon.adapters.integrations import Integration
from tryon.job_record import BILLING_FIELDS, JobStatus
from tryon.stages import api_requests, erasure
from tryon.stages.api_requests import Problem
from tryon.stages.erasure import CannotErase

ACME = Integration("acme", 100)
PERSON, TOP = "uploads/acme/p1/person.jpg", "uploads/acme/t1/top.jpg"
NORMALIZED = "normalized/0123abcd.jpg"


def job(fake, job_id, status=JobStatus.SUCCEEDED, person=PERSON, owner="acme", **fields):
    """An API job of `owner` that used `person` (fixed into a normalized copy) and TOP."""
    for key in (person, TOP):
        if fake.storage.describe(INBOX, key) is None:
            fake.storage.put(INBOX, key, b"photo " + key.encode())
    fake.storage.put(INBOX, NORMALIZED, b"fixed person")
    stem = f"looks/api/{owner}/order/{job_id}-{job_id[:10]}"
    result = {}
    if status == JobStatus.SUCCEEDED:
        fake.storage.put(RESULTS, f"{stem}.png", b"image")
        fake.storage.put(RESULTS, f"{stem}.json", b"{}")
        result = {"key": f"{stem}.png", "sidecar": f"s3://{RESULTS}/{stem}.json"}
    ref = {"bucket": INBOX, "content_type": "image/jpeg", "extension": "jpg",
           "width": 768, "height": 1024}
    return fake.look(
        job_id, status=status, owner=owner, owner_order=f"{fake.clock():017.3f}#{job_id}",
        inputs={"person": f"s3://{INBOX}/{person}", "top": f"s3://{INBOX}/{TOP}"},
        submit_inputs={"person": {**ref, "key": NORMALIZED}, "top": {**ref, "key": TOP}},
        normalized={"person": {"key": NORMALIZED, "fixes": ["exif-rotated"]}},
        result=result or None, result_stem=stem, usage={"image_count": 1},
        budget_day="2026-11-18", look_id="anna", attributes={"customer": "anna@example.com"},
        batch_id=fields.pop("batch_id", None), **fields)


def ended(fake, job_id):
    """The job ends (CANCELED), as a cancel would leave it."""
    fake.jobs.records[job_id] = dataclasses.replace(fake.jobs.records[job_id],
                                                    status=JobStatus.CANCELED)


def test_an_open_job_is_refused_and_nothing_is_deleted(fake):
    job(fake, "j1", status=JobStatus.SUBMITTED)
    before = fake.storage.versions(INBOX, "")
    with pytest.raises(Problem) as refused:
        erasure.erase_job_of(fake.ctx, ACME, "j1")
    assert (refused.value.status, refused.value.code) == (409, "JobNotEnded")
    assert "cancel" in refused.value.message
    assert fake.storage.versions(INBOX, "") == before
    assert fake.jobs.records["j1"].erased_at is None


def test_an_ended_job_goes_with_every_version_and_keeps_only_its_billing(fake):
    job(fake, "j1")
    fake.storage.put(INBOX, PERSON, b"the same photo, uploaded again")  # a second version
    erased = erasure.erase_job_of(fake.ctx, ACME, "j1")
    assert fake.storage.versions(INBOX, "uploads/") == []
    assert fake.storage.versions(INBOX, NORMALIZED) == []
    assert fake.storage.versions(RESULTS, "") == []
    # image + sidecar, person (2 versions) + top, the fixed copy (written once per job)
    assert (erased.objects, erased.jobs) == (5, 1) and erased.versions >= 6
    record = fake.jobs.records["j1"]
    kept = {name for name, value in record.to_item().items() if value not in ({}, 0)}
    assert kept <= BILLING_FIELDS and {"owner", "model", "usage", "erased_at"} <= kept
    assert record.status == JobStatus.SUCCEEDED and record.usage == {"image_count": 1}
    assert record.inputs is None and record.look_id is None and not record.attributes
    with pytest.raises(Problem) as gone:
        api_requests.result_links(fake.ctx, ACME, "j1")
    assert (gone.value.status, gone.value.code) == (410, "JobErased")
    # Erasing again deletes nothing more and keeps the first erasure's time.
    assert erasure.erase_job(fake.ctx, "j1").versions == 0
    assert fake.jobs.records["j1"].erased_at == record.erased_at


def test_an_upload_another_live_job_names_is_kept_until_that_job_ends(fake):
    job(fake, "j1")
    job(fake, "j2", status=JobStatus.QUEUED)  # the same person photo, the same fixed copy
    erased = erasure.erase_job(fake.ctx, "j1")
    assert fake.storage.describe(INBOX, PERSON) is not None
    assert fake.storage.describe(INBOX, NORMALIZED) is not None
    assert f"s3://{INBOX}/{PERSON}" in erased.kept
    assert fake.storage.versions(RESULTS, "looks/api/acme/order/j1-") == []
    with pytest.raises(Problem) as in_use:
        erasure.erase_upload_of(fake.ctx, ACME, PERSON)
    assert (in_use.value.status, in_use.value.code) == (409, "UploadInUse")
    assert "j2" in in_use.value.message
    ended(fake, "j2")
    erasure.erase_upload_of(fake.ctx, ACME, PERSON)
    assert fake.storage.describe(INBOX, PERSON) is None
    assert fake.storage.describe(INBOX, NORMALIZED) is None  # the copy made of it


def test_an_ended_job_that_is_not_erased_does_not_keep_an_upload_from_its_owner(fake):
    job(fake, "j1")
    erased = erasure.erase_upload_of(fake.ctx, ACME, PERSON)
    assert erased.objects == 2  # the upload and the fixed copy made of it
    assert fake.storage.describe(INBOX, TOP) is not None


def test_an_integration_erases_only_its_own_data(fake):
    job(fake, "j1", owner="other", person="uploads/other/p/person.jpg")
    with pytest.raises(Problem) as foreign:
        erasure.erase_job_of(fake.ctx, ACME, "j1")
    assert (foreign.value.status, foreign.value.code) == (404, "NoSuchJob")
    for key in ("uploads/other/p/person.jpg", "uploads/acme/none/x.jpg", "jobs/api/acme/x"):
        with pytest.raises(Problem) as missing:
            erasure.erase_upload_of(fake.ctx, ACME, key)
        assert (missing.value.status, missing.value.code) == (404, "NoSuchUpload")
    assert fake.storage.describe(INBOX, "uploads/other/p/person.jpg") is not None
    fake.batches.create({"batch_id": "b1", "owner": "other", "job_ids": ["j1"]}, fake.clock())
    with pytest.raises(Problem) as batch:
        erasure.erase_batch_of(fake.ctx, ACME, "b1")
    assert batch.value.code == "NoSuchBatch"


def batch(fake, batch_id, job_ids, manifest="jobs/api/acme/order.json"):
    fake.storage.put(INBOX, manifest, b'{"version": 1}', "application/json")
    fake.storage.put(INBOX, manifest, b'{"version": 1, "again": true}', "application/json")
    fake.batches.create({"batch_id": batch_id, "owner": "acme", "job_ids": job_ids,
                         "source": {"bucket": INBOX, "key": manifest, "etag": "e"},
                         "attributes": {"campaign": "anna's wedding"}}, fake.clock())


def test_a_batch_goes_with_its_jobs_and_every_version_of_its_manifest(fake):
    job(fake, "j1", batch_id="b1")
    job(fake, "j2", status=JobStatus.FAILED, batch_id="b1")
    batch(fake, "b1", ["j1", "j2"])
    erased = erasure.erase_batch_of(fake.ctx, ACME, "b1")
    assert (erased.jobs, erased.batches) == (2, 1)
    for prefix in ("uploads/", "jobs/", "normalized/"):  # (p.jpg, t.jpg: FakeStack.look's)
        assert fake.storage.versions(INBOX, prefix) == []
    assert fake.storage.versions(RESULTS, "") == []
    record = fake.batches.items["b1"]
    assert "source" not in record and "attributes" not in record and record["erased_at"]
    assert all(fake.jobs.records[j].erased_at for j in ("j1", "j2"))


def test_a_batch_with_an_open_job_is_refused_whole(fake):
    job(fake, "j1", batch_id="b1")
    job(fake, "j2", status=JobStatus.ADMITTED, batch_id="b1")
    batch(fake, "b1", ["j1", "j2"])
    with pytest.raises(Problem) as refused:
        erasure.erase_batch_of(fake.ctx, ACME, "b1")
    assert (refused.value.status, refused.value.code) == (409, "BatchNotEnded")
    assert "j2" in refused.value.message
    assert fake.jobs.records["j1"].erased_at is None
    assert fake.storage.describe(INBOX, "jobs/api/acme/order.json") is not None


def test_the_last_job_of_a_batch_erased_takes_the_manifest_with_it(fake):
    job(fake, "j1", batch_id="b1")
    job(fake, "j2", batch_id="b1")
    batch(fake, "b1", ["j1", "j2"])
    erasure.erase_job(fake.ctx, "j1")
    assert fake.storage.describe(INBOX, "jobs/api/acme/order.json") is not None
    erased = erasure.erase_job(fake.ctx, "j2")
    assert erased.batches == 1 and fake.storage.describe(INBOX, "jobs/api/acme/order.json") is None


def test_a_bucket_jobs_inputs_are_the_operators_and_stay(fake):
    fake.look("j1", status=JobStatus.SUCCEEDED)  # no owner: the bucket's own job
    erased = erasure.erase_job(fake.ctx, "j1")
    assert fake.storage.describe(INBOX, "p.jpg") is not None
    assert f"s3://{INBOX}/p.jpg" in erased.kept and fake.jobs.records["j1"].erased_at


def test_a_whole_integration_is_refused_while_a_job_is_open_then_goes(fake):
    job(fake, "j1", batch_id="b1")
    job(fake, "j2", status=JobStatus.RECEIVED)
    batch(fake, "b1", ["j1"])
    fake.storage.put(INBOX, "uploads/acme/orphan/never-named.jpg", b"x")
    with pytest.raises(CannotErase):
        erasure.erase_integration(fake.ctx, "acme")
    ended(fake, "j2")
    other = job(fake, "k1", owner="other", person="uploads/other/p/person.jpg")
    erased = erasure.erase_integration(fake.ctx, "acme")
    assert (erased.jobs, erased.batches) == (2, 1)
    assert fake.storage.versions(INBOX, "uploads/acme/") == []
    assert fake.storage.versions(INBOX, "jobs/api/acme/") == []
    assert fake.storage.describe(INBOX, "uploads/other/p/person.jpg") is not None
    assert fake.storage.describe(RESULTS, other.result_stem + ".png") is not None


def test_the_operators_command_says_what_it_erased_and_why_it_would_not(fake):
    from tryon_ops import data
    from tryon_ops.operations import OperatorError, Target

    target = Target("the test stack", None, fake.ctx, {}, None)
    job(fake, "j1", status=JobStatus.SUBMITTED)
    with pytest.raises(OperatorError, match="cannot erase: job j1 is SUBMITTED"):
        data.erase(target, job="j1")
    ended(fake, "j1")
    erased = data.erase(target, job="j1")
    assert (erased["erased"], erased["jobs"], erased["objects"]) == ("job j1", 1, 3)  # no result
    assert data.format_erased(erased).startswith("erased job j1: 3 objects (3 versions")
    with pytest.raises(OperatorError, match="not an upload key"):
        data.erase(target, upload="models/anna.jpg")
    with pytest.raises(OperatorError, match="no such job or batch 'nope'"):
        data.erase(target, job="nope")
    with pytest.raises(OperatorError, match="not an integration name"):
        data.erase(target, integration="Not A Name")
