"""Steering batches on fakes (issue 21 §1-§3): a catalogue file named by its batch (POST
/v1/batches) counted against its integration's quota before anything is paid; a cancel
that cancels what the provider has not started, goes on in the sweep, and catches rows
its expansion reaches later; a retry that makes the failed and timed-out looks again as
a new batch linked to the old one."""

import csv
import io
import json

import pytest
from fakes import INBOX
from fakes.provider import FakeTask
from test_catalogue_intake import HEADER, expand, upload
from tryon.job_record import JobStatus, ProviderStatus
from tryon.jobs import Source, batch_id_for, job_id_for, price_of, utc_day
from tryon.stages import api_requests, batch_steering
from tryon.stages.api_requests import Problem
from tryon.stages.batch_steering import cancel_batch, retry_batch
from tryon.stages.catalogue_intake import take_rows
from tryon.stages.completion import end_job
from tryon.stages.intake import take_upload
from tryon.stages.sweep import sweep

BATCH_ID = "0123456789abcdef0123456789abcdef"
KEY = f"jobs/api/acme/batches/{BATCH_ID}.csv"
MODEL = "aitryon-plus"
OLD = "fedcba9876543210fedcba9876543210"


def rows(n: int) -> list[str]:
    return [HEADER, *(f"look-{i:03d};p.jpg;t.jpg;;SKU-{i:03d}" for i in range(n))]


@pytest.fixture
def acme(fake):
    fake.integrations.items["acme"] = {"name": "acme", "daily_quota": 10}
    return fake


def test_a_file_named_by_its_batch_is_that_batch_and_counts_against_the_quota(acme):
    source = upload(acme, rows(4), key=KEY)
    job_ids = take_upload(acme.ctx, source)
    assert batch_id_for(source) == BATCH_ID and acme.batches.get(BATCH_ID)["owner"] == "acme"
    assert acme.integrations.quota_used("acme", utc_day(acme.clock())) == 4
    assert take_upload(acme.ctx, source) == job_ids  # redelivered: counted once
    assert acme.integrations.quota_used("acme", utc_day(acme.clock())) == 4
    expand(acme)
    assert {acme.jobs.get(j).owner for j in job_ids} == {"acme"}

    # The same key uploaded again (a form used twice) makes nothing.
    again = Source(INBOX, KEY, "etag2", acme.storage.put(INBOX, KEY, b"id,person\nx,p.jpg\n"))
    [refused] = take_upload(acme.ctx, again)
    assert acme.jobs.get(refused).error["code"] == "BatchAlreadyUploaded"
    assert acme.batches.get(BATCH_ID)["total"] == 4


def test_a_file_over_the_quota_is_its_batch_failed_with_why_and_nothing_paid(acme):
    acme.integrations.items["acme"]["daily_quota"] = 3
    [job_id] = take_upload(acme.ctx, upload(acme, rows(4), key=KEY))
    job = acme.jobs.get(job_id)
    assert (job.status, job.error["code"], job.batch_id) == (
        JobStatus.FAILED, "QuotaExceeded", BATCH_ID)
    assert "4 rows: 4 more images would pass this integration's quota of 3" in job.error[
        "message"]
    assert acme.expansions.started == {} and acme.admissions.sent == []
    assert acme.integrations.quota_used("acme", utc_day(acme.clock())) == 0
    [summary] = acme.notifier.events("batch.completed")  # GET /v1/batches/{id} says why
    assert summary["batch_id"] == BATCH_ID and summary["counts"]["failed"] == 1


def test_a_cancel_cancels_what_the_provider_has_not_started_and_says_what_it_saved(fake):
    fake.batches.create({"batch_id": "b", "total": 250, "shards": {"0": 100, "1": 100,
                                                                   "2": 50}}, fake.clock())
    for i in range(250):
        status = (JobStatus.SUCCEEDED if i < 10 else JobStatus.SUBMITTED if i < 20
                  else JobStatus.QUEUED)
        submitted = status == JobStatus.SUBMITTED
        if submitted:  # 10-14 running at the provider, 15-19 still queued there
            fake.provider.tasks[f"t{i}"] = FakeTask(f"t{i}", MODEL, fake.clock(), 20.0,
                                                   held=i >= 15)
        fake.look(f"j{i:03d}", status=status, batch_id="b", batch_order=f"{i:06d}",
                  provider_task_id=f"t{i}" if submitted else None,
                  provider_status=(ProviderStatus.PENDING if i >= 15 else ProviderStatus.RUNNING)
                  if submitted else None)
    # No time now (an API call near its limit): the sweep does it all.
    state = cancel_batch(fake.ctx, "b", "integration 'acme'", seconds=0)
    assert (state["done"], state["canceled"]) == (False, 0)
    assert fake.batches.canceling() == ["b"]
    assert sweep(fake.ctx)["batch_looks_canceled"] == 235  # 230 queued, 5 pending there
    state = cancel_batch(fake.ctx, "b", "someone else", seconds=5)  # asked again: as it was
    price = price_of(MODEL)
    assert state == {"batch_id": "b", "canceled": 235, "not_canceled_running": 5,
                     "saved": {price["currency"]: round(235 * price["per_image"], 6)},
                     "done": True, "requested_at": fake.clock(), "by": "integration 'acme'"}
    assert fake.batches.canceling() == []
    statuses = [fake.jobs.get(f"j{i:03d}").status for i in range(250)]
    assert statuses.count(JobStatus.CANCELED) == 235
    assert statuses.count(JobStatus.SUBMITTED) == 5 and statuses.count(JobStatus.SUCCEEDED) == 10
    assert len(fake.notifier.events("job.canceled")) == 235
    assert fake.jobs.get("j019").error["message"].startswith(
        "canceled by integration 'acme' while queued at the provider")


def test_two_cancels_at_once_count_each_look_once(fake, monkeypatch):
    """The sweep and an API call cancel the same batch together: each look is counted by
    the one whose cancel ended it, not by both (the defect: 4 canceled of 3)."""
    fake.batches.create({"batch_id": "b", "total": 3, "shards": {"0": 3}}, fake.clock())
    for i in range(3):
        fake.look(f"j{i}", status=JobStatus.QUEUED, batch_id="b", batch_order=f"{i:06d}")
    read_page, other = batch_steering.batch_jobs, {}

    def page_then_another_cancel(jobs, batch, after=None):
        page = read_page(jobs, batch, after=after)
        if not other:  # between this pass's read and its cancels, the other cancel runs
            other["running"] = True
            other.update(cancel_batch(fake.ctx, "b", "the operator", seconds=5))
        return page

    monkeypatch.setattr(batch_steering, "batch_jobs", page_then_another_cancel)
    state = cancel_batch(fake.ctx, "b", "integration 'acme'", seconds=5)
    assert (other["canceled"], state["canceled"], state["not_canceled_running"]) == (3, 3, 0)
    assert fake.batches.get("b")["cancel"]["canceled"] == {MODEL: 3}
    assert len(fake.notifier.events("job.canceled")) == 3


def test_rows_the_expansion_reaches_after_a_cancel_end_canceled_unread(acme):
    job_ids = take_upload(acme.ctx, upload(acme, rows(6), key=KEY))
    [payload] = acme.expansions.started.values()
    items = canonical_items(acme, payload)
    take_rows(acme.ctx, payload["batch"], items[:2])  # the first child, before the cancel
    assert {acme.status(j) for j in job_ids[:2]} == {"ADMITTED"}
    state = cancel_batch(acme.ctx, BATCH_ID, "integration 'acme'", seconds=5)
    # Both admitted (about to be submitted: not canceled); 4 rows not expanded yet, so
    # the cancel is not done: its next pass starts over.
    assert (state["done"], state["canceled"], state["not_canceled_running"]) == (False, 0, 2)
    assert take_rows(acme.ctx, payload["batch"], items[2:]) == {
        "rows": 4, "refused": 0, "canceled": 4}
    assert take_rows(acme.ctx, payload["batch"], items[2:]) == {  # the child retried
        "rows": 4, "refused": 0, "canceled": 0}
    sweep(acme.ctx)
    state = cancel_batch(acme.ctx, BATCH_ID, "integration 'acme'", seconds=5)
    assert (state["done"], state["canceled"]) == (True, 4)
    jobs = [acme.jobs.get(j) for j in job_ids]
    assert [job.status for job in jobs[2:]] == [JobStatus.CANCELED] * 4
    assert jobs[2].error["message"].startswith("canceled by integration 'acme' before its row")
    assert not set(acme.admissions.sent) & set(job_ids[2:])
    assert len(acme.notifier.events("job.canceled")) == 4
    # The two admitted before the cancel end: the batch ends CANCELED, not FAILED.
    for job_id in job_ids[:2]:
        end_job(acme.ctx, job_id, JobStatus.FAILED, error={"code": "X", "message": "x"})
    [summary] = acme.notifier.events("batch.completed")
    assert (summary["status"], summary["counts"]["failed"], summary["counts"]["canceled"]
            ) == ("CANCELED", 2, 4)


def canonical_items(fake, payload) -> list[dict]:
    """The rows the expansion's ItemReader hands its children."""
    data = fake.storage.read(payload["bucket"], payload["key"])
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_a_retry_makes_the_failed_and_timed_out_looks_again_as_a_linked_batch(fake):
    fake.batches.create({"batch_id": OLD, "total": 4, "job_ids": ["ok", "bad", "late", "row"],
                         "shards": {"0": 4}, "owner": None}, fake.clock())
    for job_id, status in (("ok", JobStatus.SUCCEEDED), ("bad", JobStatus.FAILED),
                           ("late", JobStatus.TIMED_OUT)):
        fake.look(job_id, status=status, batch_id=OLD, batch_order="000000",
                  attributes={"sku": job_id})
    fake.look("row", status=JobStatus.FAILED, batch_id=OLD, batch_order="000003", inputs={})
    with pytest.raises(batch_steering.CannotRetry, match="4 looks not ended yet"):
        retry_batch(fake.ctx, fake.batches.get(OLD))  # its ends not counted yet: still open
    for job_id in ("ok", "bad", "late", "row"):
        fake.batches.record_end(OLD, job_id, fake.jobs.get(job_id).status.value,
                                order="000000")
    retried = retry_batch(fake.ctx, fake.batches.get(OLD))
    # Asked again (a lost answer): the same new batch, its file written once.
    assert retry_batch(fake.ctx, fake.batches.get(OLD)) == retried
    assert retried["looks"] == 2 and list(retried["left_out"]) == ["row"]
    key = retried["file"].removeprefix(f"s3://{INBOX}/")
    assert key == f"jobs/batches/{retried['batch_id']}.jsonl"
    assert len(fake.storage.objects[(INBOX, key)]) == 1
    looks = [json.loads(line) for line in fake.storage.read(INBOX, key).decode().splitlines()]
    assert [(look["id"], look["attributes"]) for look in looks] == [
        ("bad", {"sku": "bad", "retry_of": "bad"}), ("late", {"sku": "late", "retry_of": "late"})]
    assert fake.batches.get(OLD)["retries"] == [retried["batch_id"]]

    # Intake takes it as any catalogue file: the new batch names the old one.
    written = fake.storage.describe(INBOX, key)
    source = Source(INBOX, key, written["etag"], written["version_id"])
    job_ids = take_upload(fake.ctx, source)
    new = fake.batches.get(retried["batch_id"])
    assert new["retry_of"] == OLD and new["total"] == 2
    assert job_ids == [job_id_for(source, "bad"), job_id_for(source, "late")]


def test_the_api_answers_a_batch_id_at_once_and_refuses_what_it_cannot_take(acme, monkeypatch):
    who = api_requests.Integration("acme", 10)
    made = api_requests.new_batch_form(acme.ctx, who, {
        "name": "ss27.csv", "content_type": "text/csv", "size": 2048}, "req-1")
    assert made["upload"]["key"] == f"jobs/api/acme/batches/{made['batch_id']}.csv"
    assert acme.storage.forms[-1]["max_bytes"] == 2048
    assert api_requests.new_batch_form(acme.ctx, who, {
        "name": "ss27.csv", "content_type": "text/csv", "size": 2048}, "req-1")[
        "batch_id"] == made["batch_id"]  # the same request again: the same batch

    def refused(key: str) -> Problem:
        with pytest.raises(Problem) as caught:
            api_requests.batch_of_upload(acme.ctx, who, key, "req-2")
        return caught.value

    upload(acme, rows(3), key="uploads/acme/u1/ss27.csv")
    upload(acme, rows(11), key="uploads/acme/u2/big.csv")
    upload(acme, ["colour", "red"], key="uploads/acme/u3/odd.csv")
    assert refused("uploads/other/u1/ss27.csv").code == "ForeignInput"
    assert refused("uploads/acme/u9/none.csv").code == "MissingInput"
    assert (refused("uploads/acme/u2/big.csv").status,
            refused("uploads/acme/u2/big.csv").code) == (429, "QuotaExceeded")
    assert refused("uploads/acme/u3/odd.csv").code == "InvalidBatchFile"
    acme.configure(max_batch_looks=2)
    assert (refused("uploads/acme/u1/ss27.csv").status,
            refused("uploads/acme/u1/ss27.csv").code) == (413, "BatchTooLarge")
    acme.configure(max_batch_looks=10)
    taken = api_requests.batch_of_upload(acme.ctx, who, "uploads/acme/u1/ss27.csv", "req-2")
    assert taken["rows"] == 3 and taken["file"] == (
        f"jobs/api/acme/batches/{taken['batch_id']}.csv")
    assert acme.storage.read(INBOX, taken["file"]) == acme.storage.read(
        INBOX, "uploads/acme/u1/ss27.csv")
    assert acme.integrations.quota_used("acme", utc_day(acme.clock())) == 0  # intake counts

    # The same request again gets the same batch; the same key naming another file, 422.
    assert api_requests.batch_of_upload(acme.ctx, who, "uploads/acme/u1/ss27.csv",
                                        "req-2") == taken
    upload(acme, rows(2), key="uploads/acme/u4/other.csv")
    reused = refused("uploads/acme/u4/other.csv")
    assert (reused.status, reused.code) == (422, "IdempotencyKeyReused")
    assert acme.storage.read(INBOX, taken["file"]) == acme.storage.read(
        INBOX, "uploads/acme/u1/ss27.csv")
    # A form asked for again once its file is uploaded: the same batch, no second form.
    acme.storage.put(INBOX, made["upload"]["key"], "\n".join(rows(2)).encode())
    forms = len(acme.storage.forms)
    assert api_requests.new_batch_form(acme.ctx, who, {
        "name": "ss27.csv", "content_type": "text/csv", "size": 2048}, "req-1") == {
        "batch_id": made["batch_id"]}
    assert len(acme.storage.forms) == forms
