"""Intake the way retailers work: batch manifests with kept garments and
attributes, the drop folder, and every awkward input of the corpus checked
(and fixed, or rejected) before any provider call."""

import json

from corpus import make_corpus
from PIL import Image
from tryon_local.driver import DEMO_RETIRED_MODEL, SAMPLES, format_table, run, send_demo


def s3_json(stack, uri: str) -> dict:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def clear_roster(stack) -> None:
    s3, inbox = stack.client("s3"), stack.outputs["InboxBucketName"]
    for obj in s3.list_objects_v2(Bucket=inbox, Prefix="models/").get("Contents", []):
        s3.delete_object(Bucket=inbox, Key=obj["Key"])


def test_a_batch_with_kept_garments_and_attributes(stack, driver, emulator, out_dir):
    before = emulator.stats()
    person = driver.upload_image(SAMPLES / "person.jpg")
    top, bottom = (driver.upload_image(SAMPLES / n) for n in ("top.jpg", "bottom.jpg"))
    manifest = {"version": 1, "defaults": {"resolution": 1024},
                "attributes": {"retailer": "acme", "campaign": "spring"},
                "looks": [
                    {"id": "own-bottom", "person": person, "top": top, "keep": "bottom",
                     "attributes": {"sku": "TOP-1"}},
                    {"id": "own-top", "person": person, "bottom": bottom, "keep": "top"},
                    {"id": "dress", "person": person,
                     "dress": driver.upload_image(SAMPLES / "dress.jpg"), "model": "aitryon"}]}
    report = run(stack, lambda d: [d.put_manifest("acme-spring", manifest)], out_dir,
                 timeout=120, progress=lambda s: None)
    assert [(j["look_id"], j["status"]) for j in report["jobs"]] == [
        ("own-bottom", "SUCCEEDED"), ("own-top", "SUCCEEDED"), ("dress", "SUCCEEDED")]
    after = emulator.stats()
    assert after["parsings"] - before["parsings"] == 2  # one per kept garment
    assert after["submits"] - before["submits"] == 3

    looks = {n["look_id"]: n for n in report["notifications"] if n["event"] == "job.succeeded"}
    assert looks["own-bottom"]["attributes"] == {"retailer": "acme", "campaign": "spring",
                                                 "sku": "TOP-1"}
    assert looks["own-bottom"]["kept_garment"]["slot"] == "bottom"
    assert looks["own-top"]["kept_garment"]["slot"] == "top"
    assert set(looks["own-bottom"]["inputs"]) == {"person", "top"}
    assert looks["dress"]["model"] == "aitryon"
    saved = json.loads((out_dir / "notifications.json").read_text())
    own_bottom = next(n for n in saved if n["message"].get("look_id") == "own-bottom")
    assert own_bottom["message_attributes"] == {
        "event": "job.succeeded", "status": "SUCCEEDED", "model": "aitryon-plus",
        "retailer": "acme", "campaign": "spring", "sku": "TOP-1"}

    [batch] = report["batches"]
    assert batch["status"] == "SUCCEEDED" and batch["counts"]["succeeded"] == 3
    assert batch["attributes"] == {"retailer": "acme", "campaign": "spring"}
    assert [(b["look_id"], b["result"]) for b in batch["looks"]] == [
        (n, looks[n]["result"]["uri"]) for n in ("own-bottom", "own-top", "dress")]
    batch_note = next(n for n in saved if n["message"]["event"] == "batch.completed")
    assert batch_note["message_attributes"]["retailer"] == "acme"

    result = looks["own-bottom"]["result"]
    assert result["key"] == (f"looks/acme-spring/own-bottom-"
                             f"{looks['own-bottom']['job_id'][:10]}.jpg")
    assert Image.open(report["jobs"][0]["result"]).size == (576, 1024)
    sidecar = s3_json(stack, result["sidecar"])
    assert sidecar["job_id"] == looks["own-bottom"]["job_id"]
    assert sidecar["kept_garment"]["slot"] == "bottom" and sidecar["parameters"] == {
        "resolution": 1024, "restore_face": True}
    assert sidecar["provider_task_id"] and sidecar["timings"]["provider_end"]


def test_no_garment_to_keep_fails_clearly_without_a_try_on(stack, driver, emulator, out_dir):
    emulator.fault(target="parsing", garment="lower", count=1)
    before = emulator.stats()["submits"]
    manifest = {"version": 1, "id": "nothing-to-keep",
                "person": driver.upload_image(SAMPLES / "person.jpg"),
                "top": driver.upload_image(SAMPLES / "top.jpg"), "keep": "bottom"}
    report = run(stack, lambda d: [d.put_manifest("nothing-to-keep", manifest)], out_dir,
                 timeout=60, progress=lambda s: None)
    [job] = report["jobs"]
    assert job["status"] == "FAILED" and job["error"]["code"] == "KeptGarmentNotFound"
    assert "no bottom garment found on the person image" in job["error"]["message"]
    assert emulator.stats()["submits"] == before


def test_the_drop_folder_fans_out_over_the_roster_once(stack, driver, emulator, out_dir):
    s3, inbox = stack.client("s3"), stack.outputs["InboxBucketName"]
    clear_roster(stack)
    empty = run(stack, lambda d: [d.drop_garment(SAMPLES / "top.jpg", "top", "TEE-0")],
                out_dir / "empty", timeout=60, progress=lambda s: None)
    [job] = empty["jobs"]
    assert job["status"] == "FAILED" and job["error"]["code"] == "EmptyRoster"
    assert "models/" in job["error"]["message"]

    driver.upload_image(SAMPLES / "person.jpg", "models/Alex Smith.jpg")
    driver.upload_image(SAMPLES / "person.jpg", "models/sam.jpg")
    s3.put_object(Bucket=inbox, Key="models/", Body=b"")  # a console's folder placeholder
    report = run(stack, lambda d: [d.drop_garment(SAMPLES / "bottom.jpg", "bottom", "JEANS-9")],
                 out_dir, timeout=120, progress=lambda s: None)
    assert sorted((j["look_id"], j["status"]) for j in report["jobs"]) == [
        ("Alex_Smith", "SUCCEEDED"), ("sam", "SUCCEEDED")]
    succeeded = [n for n in report["notifications"] if n["event"] == "job.succeeded"]
    assert {n["attributes"]["sku"] for n in succeeded} == {"JEANS-9"}
    results = {n["look_id"]: n["result"]["key"] for n in succeeded}
    assert results == {n["look_id"]: f"results/JEANS-9/{n['look_id']}-{n['job_id'][:10]}.jpg"
                       for n in succeeded}
    assert set(results) == {"Alex_Smith", "sam"}
    [batch] = report["batches"]
    assert batch["counts"] == {"total": 2, "succeeded": 2, "failed": 0, "timed_out": 0,
                               "canceled": 0}
    assert batch["attributes"] == {"sku": "JEANS-9"}

    # A new roster member, a placeholder, and uploads elsewhere trigger nothing.
    driver.upload_image(SAMPLES / "person.jpg", "models/new-model.jpg")
    s3.put_object(Bucket=inbox, Key="garments/top/", Body=b"")
    s3.put_object(Bucket=inbox, Key="garments/hats/cap.jpg", Body=b"x" * 10)
    jobs_before = len(driver.jobs_of({"garments/bottom/JEANS-9.jpg"}))
    sqs = stack.client("sqs")
    queue_url = sqs.get_queue_url(QueueName="tryon-local-intakequeue")["QueueUrl"]
    from test_pipeline import wait_until_drained

    wait_until_drained(sqs, queue_url)
    assert len(driver.jobs_of({"garments/bottom/JEANS-9.jpg"})) == jobs_before == 2
    assert driver.jobs_of({"garments/top/", "garments/hats/cap.jpg", "models/new-model.jpg"}) == []

    # A roster past MaxRosterSize (100): the drop fails whole, clearly, at no cost.
    for i in range(100 - 3 + 1):  # three photos are there: 101 in all
        s3.put_object(Bucket=inbox, Key=f"models/extra-{i:03d}.jpg", Body=b"\xff\xd8\xff")
    submits = emulator.stats()["submits"]
    try:
        crowded = run(stack, lambda d: [d.drop_garment(SAMPLES / "top.jpg", "top", "TEE-101")],
                      out_dir / "crowded", timeout=60, progress=lambda s: None)
    finally:
        clear_roster(stack)
    [job] = crowded["jobs"]
    assert job["status"] == "FAILED" and job["error"]["code"] == "RosterTooLarge"
    assert "101 person photos, over the limit of 100" in job["error"]["message"]
    assert "MaxRosterSize" in job["error"]["message"]
    assert [n["event"] for n in crowded["notifications"]] == ["job.failed"]
    assert emulator.stats()["submits"] == submits


def test_every_awkward_input_is_fixed_or_rejected_before_paying(stack, driver, emulator,
                                                                 out_dir):
    """A case of each outcome of the corpus (and one named with spaces and non-ASCII
    letters, which S3 events encode) as garments of one batch, decoded in the intake
    function: "ok"/"fixed" inputs succeed, the rest fail with the expected code and
    never reach the provider. Every case of the corpus is held to its outcome by
    tests/unit/test_preflight.py."""
    corpus = make_corpus()
    cases = [next(case for case in corpus if case.expected == outcome)
             for outcome in dict.fromkeys(case.expected for case in corpus)]
    cases.append(next(case for case in corpus if " " in case.key and not case.key.isascii()
                      and case not in cases))
    s3, inbox = stack.client("s3"), stack.outputs["InboxBucketName"]
    person = driver.upload_image(SAMPLES / "person.jpg")
    looks = []
    for number, case in enumerate(cases):
        key = f"corpus/{case.key}"
        s3.put_object(Bucket=inbox, Key=key, Body=case.data)
        looks.append({"id": f"case-{number:02d}", "person": person, "top": key})
    before = emulator.stats()["submits"]
    report = run(stack, lambda d: [d.put_manifest("corpus", {"version": 1, "looks": looks})],
                 out_dir, timeout=300, progress=lambda s: None)
    outcomes = {}
    for case, job in zip(cases, report["jobs"], strict=True):
        outcome = job["status"] if job["status"] == "SUCCEEDED" else job["error"]["code"]
        outcomes[case.name] = outcome
    expected = {case.name: "SUCCEEDED" if case.expected in ("ok", "fixed") else case.expected
                for case in cases}
    assert outcomes == expected
    succeeded = sum(1 for o in outcomes.values() if o == "SUCCEEDED")
    assert emulator.stats()["submits"] - before == succeeded  # rejects cost nothing
    fixed = {n["look_id"]: n["normalized"] for n in report["notifications"]
             if n["event"] == "job.succeeded"}
    for number, case in enumerate(cases):
        if case.expected == "fixed":
            recorded = " ".join(fixed[f"case-{number:02d}"]["top"]["fixes"])
            assert all(fix in recorded for fix in case.fixes), (case.name, recorded)
        elif case.expected == "ok":
            assert fixed[f"case-{number:02d}"] is None, case.name
    [batch] = report["batches"]
    assert batch["status"] == "PARTIAL" and batch["counts"]["succeeded"] == succeeded


def test_the_demo_runs_everything(stack, retire, out_dir):
    clear_roster(stack)  # the demo starts on a fresh stack
    retire(DEMO_RETIRED_MODEL)  # as `tryon demo` has its emulator do
    report = run(stack, send_demo, out_dir, timeout=180, progress=lambda s: None)
    assert {j["label"]: j["status"] for j in report["jobs"]} == {
        "top-only": "SUCCEEDED", "bottom-only": "SUCCEEDED", "top-and-bottom": "SUCCEEDED",
        "dress": "SUCCEEDED", "qwen3-top-and-bottom": "SUCCEEDED", "qwen2-dress": "SUCCEEDED",
        "retired-model": "SUCCEEDED", "new-top-own-bottom": "SUCCEEDED",
        "own-top-new-bottom": "SUCCEEDED", "DRESS-001/alex": "SUCCEEDED",
        "DRESS-001/sam": "SUCCEEDED", "cat-tee": "SUCCEEDED", "cat-jeans": "SUCCEEDED",
        "cat-outfit": "SUCCEEDED"}
    models = {j["label"]: (j["requested_model"], j["model"]) for j in report["jobs"]}
    assert models["qwen3-top-and-bottom"] == ("qwen-image-3.0", "qwen-image-3.0")
    assert models["qwen2-dress"] == ("qwen-image-2.0", "qwen-image-2.0")
    assert models["retired-model"] == (DEMO_RETIRED_MODEL, "qwen-image-3.0")
    assert "aitryon -> qwen-image-3.0" in format_table(report)
    assert len(report["batches"]) == 3  # the manifest, the drop, the catalogue file


def test_results_of_different_uploads_never_overwrite_each_other(stack, driver, out_dir):
    """jobs/teamA/spring.json and jobs/teamB/spring.json with the same look id, then
    teamA's uploaded again: three results side by side, none overwritten."""
    s3, results_bucket = stack.client("s3"), stack.outputs["ResultsBucketName"]
    person = driver.upload_image(SAMPLES / "person.jpg")
    manifest = {"version": 1, "id": "look-1", "person": person,
                "top": driver.upload_image(SAMPLES / "top.jpg")}
    first = run(stack, lambda d: [d.put_manifest("teamA/spring", manifest),
                                  d.put_manifest("teamB/spring", manifest)],
                out_dir / "first", timeout=120, progress=lambda s: None)
    again = run(stack, lambda d: [d.put_manifest("teamA/spring", manifest)],
                out_dir / "again", timeout=120, progress=lambda s: None)
    jobs = first["jobs"] + again["jobs"]
    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * 3
    keys = {n["job_id"]: n["result"]["key"]
            for n in first["notifications"] + again["notifications"]}
    assert len(set(keys.values())) == 3
    assert sorted(k.rsplit("/", 1)[0] for k in keys.values()) == [
        "looks/teamA/spring", "looks/teamA/spring", "looks/teamB/spring"]
    for job_id, key in keys.items():  # each still holds its own job's image
        head = s3.head_object(Bucket=results_bucket, Key=key)
        assert head["Metadata"]["job-id"] == job_id
