"""At most a model's slots (its running limit, and ProviderQueueAhead tasks queued at
the provider) per model: the rest wait QUEUED and are handed a slot as one comes
free; the sweep and the workflow-ended rule close every gap a hand-off or a crash
can leave."""

import time
from collections import Counter

from tryon_local.driver import SAMPLES

RUNNING = 5  # aitryon-plus's published running limit
SLOTS = RUNNING + 1  # and the template's default ProviderQueueAhead


def peak_overlap(tasks: list[dict]) -> int:
    """The most tasks unfinished at the same moment, from their provider timelines."""
    edges = sorted([(t["submit_time"], 1) for t in tasks]
                   + [(t["end_time"], -1) for t in tasks if t["end_time"]])
    peak = now = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def manifest_of(driver, name: str, count: int, model: str = "aitryon-plus") -> str:
    """`count` different looks (one person photo each: the same look asked twice
    in one upload would be made once)."""
    top = driver.upload_image(SAMPLES / "top.jpg")
    return driver.put_manifest(name, {"version": 1, "looks": [
        {"id": f"look-{i:02d}", "top": top, "model": model,
         "person": driver.upload_image(SAMPLES / "person.jpg", f"inputs/{name}-{i:02d}.jpg")}
        for i in range(count)]})


def test_jobs_past_the_slots_wait_queued_and_start_in_order_as_slots_free(
        stack, driver, emulator, stores):
    started = time.time()
    before = emulator.stats()["submits"]
    # The first tasks run until released: however slowly twelve photos are checked on
    # a busy machine, every slot is taken (five running, one queued at the provider)
    # and the other six looks must queue.
    emulator.fault(target="hold", count=RUNNING)
    key = manifest_of(driver, "twelve-looks", 12)
    deadline = time.monotonic() + 60
    while Counter(j["status"] for j in driver.jobs_of({key})) != {
            "SUBMITTED": SLOTS, "QUEUED": 12 - SLOTS}:
        assert time.monotonic() < deadline, Counter(j["status"] for j in driver.jobs_of({key}))
        time.sleep(0.2)
    for job in driver.jobs_of({key}):
        if job["status"] == "SUBMITTED":
            emulator.hold(job["provider_task_id"], False)
    jobs, notes = driver.follow([key], timeout=120)
    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * 12
    assert emulator.stats()["submits"] == before + 12  # each paid once
    mine = {j["provider_task_id"] for j in jobs}
    tasks = [t for t in emulator.tasks() if t["task_id"] in mine]
    assert len(tasks) == 12 and peak_overlap(tasks) == SLOTS
    assert all(t["submit_time"] >= started - 1 for t in tasks)
    queued = [j for j in jobs if "queued" in j["timeline"]]
    assert len(queued) == 12 - SLOTS
    # First in, first out: admissions follow the order the looks were queued in.
    by_queue = sorted(queued, key=lambda j: j["timeline"]["queued"])
    assert by_queue == sorted(queued, key=lambda j: j["timeline"]["admitted"])
    assert stores.slots.holders("aitryon-plus") == {}
    assert len([n for n in notes if n["message"]["event"] == "job.succeeded"]) == 12


def test_an_aborted_workflow_still_ends_its_job_with_a_notification(
        stack, driver, emulator, stores):
    emulator.fault(target="hold", count=1)  # the task stays RUNNING until released
    key = manifest_of(driver, "aborted", 1)
    deadline = time.monotonic() + 30
    while not (jobs := driver.jobs_of({key})) or not jobs[0].get("execution_arn"):
        assert time.monotonic() < deadline, "the job never started its workflow"
        time.sleep(0.2)
    [job] = jobs
    sfn = stack.client("stepfunctions")
    sfn.stop_execution(executionArn=job["execution_arn"], cause="operator")
    try:
        [job], [note, _batch] = driver.follow([key], timeout=30)
        assert job["status"] == "FAILED" and job["error"]["code"] == "WorkflowAborted"
        assert note["message"]["event"] == "job.failed"
        # Its task still runs at the provider, so its slot stays taken until it ends.
        assert job["job_id"] in stores.slots.holders("aitryon-plus")
    finally:
        emulator.hold(job["provider_task_id"], False)
    deadline = time.monotonic() + 60
    while job["job_id"] in stores.slots.holders("aitryon-plus"):
        assert time.monotonic() < deadline, "the sweep never gave the slot back"
        time.sleep(0.5)


