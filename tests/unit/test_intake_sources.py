"""What intake takes uploads from: the inbox bucket only, and an integration's
uploads only in that integration's own manifests."""

import json

import pytest
from fakes import INBOX
from tryon.job_record import JobStatus
from tryon.jobs import Source
from tryon.stages.intake import take_upload


def test_an_upload_event_naming_another_bucket_makes_nothing(fake):
    # The intake role reads only the inbox; an event naming any other bucket (sent to
    # the intake queue by whoever may send there) is ignored before anything is read.
    manifest = json.dumps({"version": 1, "person": "p.jpg", "top": "t.jpg"}).encode()
    version = fake.storage.put("someone-elses-bucket", "jobs/looks.json", manifest,
                               "application/json")
    source = Source("someone-elses-bucket", "jobs/looks.json", "etag", version)
    assert take_upload(fake.ctx, source) == []
    assert fake.jobs.records == {}


@pytest.mark.parametrize("key", ["jobs/looks.json", "jobs/api/other/request.json"])
def test_an_integrations_upload_is_named_only_by_that_integrations_manifests(fake, key):
    fake.storage.put(INBOX, "uploads/acme/x/person.jpg", b"image")
    fake.storage.put(INBOX, "t.jpg", b"image")
    manifest = json.dumps({"version": 1, "person": "uploads/acme/x/person.jpg",
                           "top": "t.jpg"}).encode()
    source = Source(INBOX, key, "etag", fake.storage.put(INBOX, key, manifest,
                                                         "application/json"))
    [job_id] = take_upload(fake.ctx, source)
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.FAILED and job.error["code"] == "ForeignInput"
    assert "only that integration's requests may name" in job.error["message"]
