"""What intake takes an upload from: the inbox bucket only."""

import json

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
