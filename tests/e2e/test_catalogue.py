"""A catalogue file on the real local stack: a semicolon CSV with a BOM, as a
spreadsheet in a comma-decimal locale saves it, expanded by the batch state machine
(a Distributed Map over the canonical CSV, its rows made jobs by the batch rows
function); a bad row fails its own look alone."""

from tryon_local.driver import SAMPLES, run


def test_a_semicolon_csv_with_a_bom_is_expanded_row_by_row(stack, driver, out_dir):
    person = driver.upload_image(SAMPLES / "person.jpg")
    top, bottom, dress = (driver.upload_image(SAMPLES / f"{name}.jpg")
                          for name in ("top", "bottom", "dress"))
    rows = ["id;person;top;bottom;dress;model;resolution;attr.sku",
            f"tee;{person};{top};;;;1024;TEE-1",
            f"jeans;{person};;{bottom};;;;JEANS-2",
            f"outfit;{person};{top};{bottom};;;;SET-3",
            f"dress;{person};;;{dress};aitryon;;DRESS-4",
            f"bad;{person};{top};;;;12x;BAD-5"]
    csv_bytes = "\ufeff".encode() + "\r\n".join(rows).encode() + b"\r\n"
    key = "jobs/ss27-catalogue.csv"
    report = run(stack, lambda d: [d.put(key, csv_bytes, "text/csv")], out_dir, timeout=90,
                 progress=lambda s: None)

    statuses = {job["look_id"]: job["status"] for job in report["jobs"]}
    assert statuses == {"tee": "SUCCEEDED", "jeans": "SUCCEEDED", "outfit": "SUCCEEDED",
                        "dress": "SUCCEEDED", "bad": "FAILED"}
    [bad] = [job for job in report["jobs"] if job["look_id"] == "bad"]
    assert bad["error"]["code"] == "InvalidRow"
    inbox = stack.outputs["InboxBucketName"]
    assert bad["error"]["message"].startswith(
        f"s3://{inbox}/{key}: row 6, column resolution: '12x' is not a number")

    notes = [n for n in report["notifications"] if n.get("job_id")]
    assert sorted(n["job_id"] for n in notes) == sorted(j["job_id"] for j in report["jobs"])
    succeeded = {n["look_id"]: n for n in notes if n["event"] == "job.succeeded"}
    assert succeeded["tee"]["attributes"] == {"sku": "TEE-1"}
    assert succeeded["tee"]["result"]["key"].startswith("looks/ss27-catalogue/tee-")

    [batch] = report["batches"]
    assert batch["counts"]["succeeded"] == 4 and batch["counts"]["failed"] == 1
    batch_ids = {job["batch_id"] for job in driver.jobs_of({key})}
    [batch_id] = batch_ids
    assert batch["batch_id"] == batch_id
    machine = stack.outputs["BatchExpansionStateMachineArn"]
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=machine.replace(":stateMachine:", ":execution:") + f":{batch_id}")
    assert execution["status"] == "SUCCEEDED"
    s3 = stack.client("s3")
    canonical = s3.get_object(Bucket=inbox, Key=f"normalized/batches/{batch_id}.csv")
    lines = canonical["Body"].read().decode().splitlines()
    assert lines[0].startswith("row,id,person,") and len(lines) == 6
