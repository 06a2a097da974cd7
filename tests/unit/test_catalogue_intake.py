"""Catalogue files through intake and their expansion, on fakes: the first pass refuses
a file whole at no cost, or writes its canonical CSV, records the batch and starts the
expansion once; the expansion's children (take_rows) make each row a job, a bad or
repeated row failing alone, and may be retried without a job made or admitted twice."""

import csv
import io
from types import SimpleNamespace

import pytest
from fakes import INBOX
from PIL import Image
from tryon import catalogue
from tryon.job_record import JobStatus
from tryon.jobs import Source, job_id_for, utc_day
from tryon.stages.catalogue_intake import canonical_key, take_rows
from tryon.stages.intake import take_upload

HEADER = "id;person;top;resolution;attr.sku"


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((768, 1024), 64).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def upload(fake, lines: list[str], key: str = "jobs/ss27.csv", bom: bool = True) -> Source:
    photo = jpeg()
    for name in ("p.jpg", "t.jpg"):
        if fake.storage.describe(INBOX, name) is None:
            fake.storage.put(INBOX, name, photo)
    body = ("\ufeff" if bom else "") + "\r\n".join(lines) + "\r\n"
    return Source(INBOX, key, "etag", fake.storage.put(INBOX, key, body.encode(), "text/csv"))


def expand(fake, batch_size: int = 1) -> list[dict]:
    """What the expansion does with each started batch: read its canonical CSV with a
    CSV reader (every cell a string) and hand the rows to children, `batch_size` at a
    time. Returns the children's answers."""
    answers = []
    for payload in fake.expansions.started.values():
        data = fake.storage.read(payload["bucket"], payload["key"])
        items = list(csv.DictReader(io.StringIO(data.decode())))
        for start in range(0, len(items), batch_size):
            answers.append(take_rows(fake.ctx, payload["batch"], items[start:start + batch_size]))
    return answers


GOOD = ["a;p.jpg;t.jpg;1024;SKU-A", "b;p.jpg;t.jpg;;SKU-B"]


def test_a_file_with_more_rows_than_the_stack_takes_is_refused_whole_at_no_cost(fake):
    fake.configure(max_batch_looks=2)
    source = upload(fake, [HEADER, *GOOD, "c;p.jpg;t.jpg;;SKU-C"])
    [job_id] = take_upload(fake.ctx, source)
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.FAILED and job.error["code"] == "BatchTooLarge"
    assert job.error["message"].startswith("s3://inbox/jobs/ss27.csv: more than 2 looks")
    assert "split the file" in job.error["message"]
    assert [n["event"] for n in fake.notifier.events()] == ["job.failed"]
    assert fake.expansions.started == {} and fake.batches.get(job_id_for(source, "batch")) is None
    assert fake.admissions.sent == [] and fake.pacer.turns == []


def test_a_file_over_the_byte_limit_is_refused_before_it_is_read(fake, monkeypatch):
    monkeypatch.setattr(catalogue, "MAX_BATCH_BYTES", 100)
    source = upload(fake, [HEADER, *GOOD * 3])
    [job_id] = take_upload(fake.ctx, source)
    assert fake.jobs.get(job_id).error["code"] == "BatchTooLarge"
    assert "bytes, over the 100" in fake.jobs.get(job_id).error["message"]
    assert fake.storage.streamed == [] and fake.expansions.started == {}


def test_a_file_that_is_not_a_catalogue_is_refused_naming_what_to_fix(fake):
    source = upload(fake, ["person;top;colour", "p.jpg;t.jpg;red"])
    [job_id] = take_upload(fake.ctx, source)
    error = fake.jobs.get(job_id).error
    assert error["code"] == "InvalidBatchFile" and "'colour'" in error["message"]
    assert fake.expansions.started == {}


def test_the_first_pass_writes_the_canonical_csv_records_the_batch_and_starts_it(fake):
    source = upload(fake, [HEADER, *GOOD, "a;p.jpg;t.jpg;;SKU-A2"])
    job_ids = take_upload(fake.ctx, source)
    batch_id = job_id_for(source, "batch")
    assert job_ids[:2] == [job_id_for(source, "a"), job_id_for(source, "b")]
    assert len(set(job_ids)) == 3  # the repeated id has a job of its own
    assert fake.jobs.records == {}  # no job before the expansion makes it
    batch = fake.batches.get(batch_id)
    assert batch["job_ids"] == job_ids and batch["total"] == 3
    assert batch["source"] == source.as_dict()
    [(name, payload)] = fake.expansions.started.items()
    assert name == batch_id
    assert payload == {"batch": {"batch_id": batch_id, "source": source.as_dict(),
                                 "priority": "batch", "owner": None,
                                 "received": fake.clock()},
                       "bucket": INBOX, "key": canonical_key(batch_id)}
    text = fake.storage.read(INBOX, f"normalized/batches/{batch_id}.csv").decode()
    items = list(csv.DictReader(io.StringIO(text)))
    assert [item["id"] for item in items] == ["a", "b", "a"]
    assert [item["attr.sku"] for item in items] == ["SKU-A", "SKU-B", "SKU-A2"]
    assert items[0]["error"] == "" and "repeats the id" in items[2]["error"]
    assert not canonical_key(batch_id).startswith(("jobs/", "garments/"))  # no trigger


def test_a_redelivered_upload_starts_its_expansion_once(fake):
    source = upload(fake, [HEADER, *GOOD])
    first = take_upload(fake.ctx, source)
    assert take_upload(fake.ctx, source) == first
    assert len(fake.expansions.started) == 1  # the second start was ExecutionAlreadyExists
    expand(fake)
    assert {fake.status(job_id) for job_id in first} == {"ADMITTED"}


def test_a_bad_row_and_a_repeated_id_fail_alone_while_the_other_rows_are_admitted(fake):
    source = upload(fake, [HEADER, *GOOD, "c;p.jpg;t.jpg;12x;SKU-C", "a;p.jpg;t.jpg;;SKU-A2",
                           "d;p.jpg;missing.jpg;;SKU-D"])
    job_ids = take_upload(fake.ctx, source)
    answers = expand(fake, batch_size=50)
    assert answers == [{"rows": 5, "refused": 3}]
    jobs = [fake.jobs.get(job_id) for job_id in job_ids]
    assert [(j.look_id, j.status.value) for j in jobs] == [
        ("a", "ADMITTED"), ("b", "ADMITTED"), ("c", "FAILED"), ("a", "FAILED"), ("d", "FAILED")]
    assert sorted(fake.admissions.sent) == sorted(job_ids[:2])
    assert jobs[0].attributes == {"sku": "SKU-A"} and jobs[0].parameters["resolution"] == 1024
    assert jobs[0].priority == "batch" and jobs[0].batch_id == job_id_for(source, "batch")
    assert jobs[0].result_stem.startswith("looks/ss27/a-")
    bad, repeated, missing = (j.error for j in jobs[2:])
    assert bad["code"] == "InvalidRow" and bad["message"].startswith(
        "s3://inbox/jobs/ss27.csv: row 4, column resolution: '12x' is not a number")
    assert bad["row"] == "4" and bad["column"] == "resolution"
    assert repeated["code"] == "DuplicateLookId" and repeated["message"] == (
        "s3://inbox/jobs/ss27.csv: row 5, column id: repeats the id 'a' of row 2: give "
        "each look its own id (the first row with it is made)")
    assert missing["code"] == "MissingInput" and "row 6, column top: s3://inbox/missing.jpg" \
        in missing["message"]
    failed = [n for n in fake.notifier.events() if n["event"] == "job.failed"]
    assert sorted(n["job_id"] for n in failed) == sorted(job_ids[2:])


def test_a_retried_child_makes_no_job_twice_and_admits_none_twice(fake):
    source = upload(fake, [HEADER, *GOOD, "c;p.jpg;t.jpg;12x;SKU-C"])
    job_ids = take_upload(fake.ctx, source)
    expand(fake, batch_size=50)
    expand(fake, batch_size=50)  # the whole child retried
    expand(fake)  # and again, one row per child (the local stack's way)
    # Charged to the day's budget once each; a retry only hands an ADMITTED job on to
    # the submit queue again (intake's resume: submit takes it once).
    assert fake.budget.spent(utc_day(fake.clock()))["spent"] == 2
    assert set(fake.admissions.sent) == set(job_ids[:2])
    assert len([n for n in fake.notifier.events() if n["event"] == "job.failed"]) == 1
    assert {job_id: fake.status(job_id) for job_id in job_ids} == {
        job_ids[0]: "ADMITTED", job_ids[1]: "ADMITTED", job_ids[2]: "FAILED"}


@pytest.mark.parametrize("key", ["jobs/ss27.csv", "jobs/api/other/ss27.csv"])
def test_a_row_naming_an_integrations_upload_fails_alone_unless_it_is_that_integrations(
        fake, key):
    fake.storage.put(INBOX, "uploads/acme/x/person.jpg", jpeg())
    source = upload(fake, [HEADER, *GOOD, "own;uploads/acme/x/person.jpg;t.jpg;;S"], key)
    job_ids = take_upload(fake.ctx, source)
    expand(fake)
    job = fake.jobs.get(job_ids[2])
    assert job.status == JobStatus.FAILED and job.error["code"] == "ForeignInput"
    assert "row 4, column person" in job.error["message"]
    assert fake.status(job_ids[0]) == "ADMITTED"


def test_a_jsonl_file_is_expanded_as_a_csv_is(fake):
    lines = ['{"id": "a", "person": "p.jpg", "top": "t.jpg", "attributes": {"sku": "A"}}',
             '{"id": "b", "person": "p.jpg", "top": "t.jpg", "restore_face": "maybe"}']
    source = upload(fake, lines, "jobs/ss27.jsonl", bom=False)
    job_ids = take_upload(fake.ctx, source)
    expand(fake)
    a, b = (fake.jobs.get(job_id) for job_id in job_ids)
    assert a.status == JobStatus.ADMITTED and a.attributes == {"sku": "A"}
    assert b.status == JobStatus.FAILED and "row 2, column restore_face" in b.error["message"]


LAMBDA_CONTEXT = SimpleNamespace(function_name="batch-rows", memory_limit_in_mb=1024,
                                 invoked_function_arn="arn:aws:lambda:x", aws_request_id="r",
                                 get_remaining_time_in_millis=lambda: 600000)


def test_the_batch_rows_function_takes_50_rows_or_one(fake, monkeypatch):
    # On AWS the ItemBatcher hands a child {"Items": [...]}; the local stack (no
    # ItemBatcher in moto) one item, {"row", "batch"}.
    from tryon.handlers import batch_rows

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setattr(batch_rows.metrics, "namespace", "TryOn")
    monkeypatch.setattr(batch_rows, "stage_context", lambda: fake.ctx)
    source = upload(fake, [HEADER, *GOOD, "c;p.jpg;t.jpg;12x;SKU-C"])
    job_ids = take_upload(fake.ctx, source)
    [payload] = fake.expansions.started.values()
    data = fake.storage.read(payload["bucket"], payload["key"]).decode()
    items = [{"row": row, "batch": payload["batch"]}
             for row in csv.DictReader(io.StringIO(data))]
    assert batch_rows.handler({"Items": items[:2]}, LAMBDA_CONTEXT) == {"rows": 2, "refused": 0}
    assert batch_rows.handler(items[2], LAMBDA_CONTEXT) == {"rows": 1, "refused": 1}
    assert [fake.status(job_id) for job_id in job_ids] == ["ADMITTED", "ADMITTED", "FAILED"]


def test_a_child_that_failed_at_every_attempt_ends_the_jobs_it_never_made(fake):
    from tryon.stages.catalogue_intake import rows_failed

    source = upload(fake, [HEADER, *GOOD, "c;p.jpg;t.jpg;;SKU-C"])
    job_ids = take_upload(fake.ctx, source)
    [payload] = fake.expansions.started.values()
    data = fake.storage.read(payload["bucket"], payload["key"]).decode()
    items = list(csv.DictReader(io.StringIO(data)))
    take_rows(fake.ctx, payload["batch"], items[:1])  # an attempt got to the first row
    answer = rows_failed(fake.ctx, payload["batch"], items,
                         {"Error": "Lambda.Unknown", "Cause": "timed out"})
    assert answer == {"rows": 3, "refused": 2}
    assert [fake.status(job_id) for job_id in job_ids] == ["ADMITTED", "FAILED", "FAILED"]
    error = fake.jobs.get(job_ids[1]).error
    assert error["code"] == "IntakeFailed" and error["message"].startswith(
        "s3://inbox/jobs/ss27.csv: row 3: the batch rows function failed at every attempt")
    assert "Lambda.Unknown: timed out" in error["message"]


def test_the_local_stack_strips_only_the_item_batcher_moto_refuses():
    import json
    from pathlib import Path

    from tryon_local.cfn import without_item_batcher

    root = Path(__file__).resolve().parents[2] / "infra" / "statemachine"
    text = (root / "batch_expansion.asl.json").read_text()
    local = json.loads(without_item_batcher(text))
    expected = json.loads(text)
    assert expected["States"]["ExpandRows"].pop("ItemBatcher") == {"MaxItemsPerBatch": 50}
    assert local == expected
    job = (root / "tryon_job.asl.json").read_text()
    assert without_item_batcher(job) == job  # no Distributed Map: left as written


def test_a_large_file_keeps_no_ids_in_its_batch_and_its_jobs_are_found_by_their_row(fake):
    rows = [f"look-{n};p.jpg;t.jpg;;S{n}" for n in range(101)]
    source = upload(fake, [HEADER, *rows[:100], "bad;p.jpg;t.jpg;12x;X"])
    job_ids = take_upload(fake.ctx, source)
    batch = fake.batches.get(job_id_for(source, "batch"))
    assert batch["total"] == 101 and batch.get("job_ids") is None
    expand(fake, batch_size=50)
    first, bad = fake.jobs.get(job_ids[0]), fake.jobs.get(job_ids[-1])
    assert (first.batch_order, bad.batch_order) == ("000002", "000102")
    assert bad.status == JobStatus.FAILED and bad.batch_id == batch["batch_id"]
