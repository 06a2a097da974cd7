"""At most MaxTasksInFlight provider tasks per model: the rest wait QUEUED and are
handed a slot as one comes free; the sweep and the workflow-ended rule close
every gap a hand-off or a crash can leave."""

import time

from tryon.adapters.store import JobStore
from tryon.settings import Timebase
from tryon_local.driver import SAMPLES
from tryon_local.runtime import notifications_from

MAX_IN_FLIGHT = 5  # the template's default


def store(stack) -> JobStore:
    return JobStore(stack.outputs["JobsTableName"], stack.resource("dynamodb"))


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
        stack, driver, emulator):
    started = time.time()
    before = emulator.stats()["submits"]
    key = manifest_of(driver, "twelve-looks", 12)
    jobs, notes = driver.follow([key], timeout=120)
    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * 12
    assert emulator.stats()["submits"] == before + 12  # each paid once
    mine = {j["provider_task_id"] for j in jobs}
    tasks = [t for t in emulator.tasks() if t["task_id"] in mine]
    assert len(tasks) == 12 and peak_overlap(tasks) == MAX_IN_FLIGHT
    assert all(t["submit_time"] >= started - 1 for t in tasks)
    queued = [j for j in jobs if "queued" in j["timeline"]]
    # Twelve photos are checked one after another: a look checked after the first
    # task ended takes the free slot directly, so at most 7 queue (and some must).
    assert 1 <= len(queued) <= 12 - MAX_IN_FLIGHT
    # First in, first out: admissions follow the order the looks were queued in.
    by_queue = sorted(queued, key=lambda j: j["timeline"]["queued"])
    assert by_queue == sorted(queued, key=lambda j: j["timeline"]["admitted"])
    assert store(stack).slot_holders("aitryon-plus") == {}
    assert len([n for n in notes if n["message"]["event"] == "job.succeeded"]) == 12


def test_the_sweep_reclaims_slots_whose_holder_vanished_and_admits_the_waiting_job(
        stack, driver):
    jobs_store = store(stack)
    # Leaked slots whose leases run out 100 s (pipeline time) from now: long enough
    # for the look to find every slot taken and queue, before the sweep reclaims them.
    lease_end = Timebase(stack.options.speedup, stack.time_anchor).now() + 100
    for i in range(MAX_IN_FLIGHT):
        assert jobs_store.acquire_slot("aitryon", f"vanished-{i}", lease_end, MAX_IN_FLIGHT)
    key = manifest_of(driver, "after-a-leak", 1, model="aitryon")
    [job], _ = driver.follow([key], timeout=90)
    assert job["status"] == "SUCCEEDED"
    assert "queued" in job["timeline"] and "admitted" in job["timeline"]
    assert jobs_store.slot_holders("aitryon") == {}


def test_a_submit_whose_answer_is_lost_is_found_in_the_task_list_not_paid_twice(
        stack, driver, emulator):
    before = emulator.stats()
    emulator.fault(target="lost_submit", count=1, delay=6)  # longer than the read timeout
    key = manifest_of(driver, "lost-answer", 1)
    [job], [note, _batch] = driver.follow([key], timeout=90)
    after = emulator.stats()
    assert job["status"] == "SUCCEEDED" and note["message"]["event"] == "job.succeeded"
    assert after["lost_answers"] == before["lost_answers"] + 1
    assert after["submits"] == before["submits"] + 1  # adopted, not resubmitted
    assert job["submit_attempts"] == 1
    assert store(stack).task_owner(job["provider_task_id"]) == job["job_id"]


def test_an_aborted_workflow_still_ends_its_job_with_a_notification(
        stack, driver, emulator):
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
        assert job["job_id"] in store(stack).slot_holders("aitryon-plus")
    finally:
        emulator.hold(job["provider_task_id"], False)
    deadline = time.monotonic() + 60
    while job["job_id"] in store(stack).slot_holders("aitryon-plus"):
        assert time.monotonic() < deadline, "the sweep never gave the slot back"
        time.sleep(0.5)


def test_looks_over_the_daily_budget_wait_queued_and_start_when_it_is_raised(
        stack, driver, emulator):
    """DailyImageBudget: an atomic counter taken before a slot. Looks over it wait
    QUEUED (nothing lost, nothing failed), one budget.reached notification goes out,
    and they start as soon as the budget is raised. A look repeated within the
    upload is made once."""
    jobs_store = store(stack)
    clock = Timebase(stack.options.speedup, stack.time_anchor)
    if 86400 - clock.now() % 86400 < 1200:  # the pipeline's UTC day turns within 2 min
        time.sleep(1200 / stack.options.speedup)
    day = time.strftime("%Y-%m-%d", time.gmtime(clock.now()))
    spent = jobs_store.budget_spent(day)["spent"]
    watcher = stack.subscribe_queue(f"budget-{time.monotonic_ns()}")
    person, top, bottom, dress = (driver.upload_image(SAMPLES / f"{name}.jpg")
                                  for name in ("person", "top", "bottom", "dress"))
    looks = [{"id": "top", "person": person, "top": top},
             {"id": "bottom", "person": person, "bottom": bottom},
             {"id": "outfit", "person": person, "top": top, "bottom": bottom},
             {"id": "dress", "person": person, "dress": dress},
             # The same image as "top", asked again under another id: made once.
             {"id": "top-again", "person": person, "top": top, "attributes": {"x": "1"}}]
    before = emulator.stats()["submits"]
    jobs_store.set_budget_limit(spent + 2)
    try:
        key = driver.put_manifest("over-budget", {"version": 1, "looks": looks})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = driver.jobs_of({key})
            waiting = [j for j in jobs if j.get("waiting_for") == "budget"]
            if len(jobs) == 4 and len(waiting) == 2 and sum(
                    j["status"] == "SUCCEEDED" for j in jobs) == 2:
                break
            time.sleep(0.5)
        assert [j["status"] for j in waiting] == ["QUEUED", "QUEUED"], jobs
        time.sleep(30 / stack.options.speedup)  # a few sweeps: still waiting, not failed
        still = {j["job_id"]: j["status"] for j in driver.jobs_of({key})}
        assert {still[j["job_id"]] for j in waiting} == {"QUEUED"}
        assert emulator.stats()["submits"] == before + 2
        reached = [n["message"] for n in notifications_from(stack.client("sqs"), watcher)
                   if n["message"]["event"] == "budget.reached"]
        assert len(reached) == 1 and reached[0]["day"] == day
        assert reached[0]["budget"] == spent + 2 and reached[0]["spent"] == spent + 2
        assert "DailyImageBudget" in reached[0]["message"]

        jobs_store.set_budget_limit(spent + 4)  # the operator raises it: the sweep admits
        jobs, notes = driver.follow([key], timeout=120)
    finally:
        jobs_store.set_budget_limit(None)
        driver.table.update_item(Key={"pk": f"BUDGET#{day}", "sk": "BUDGET"},
                                 UpdateExpression="REMOVE reached_at")
    assert sorted(j["look_id"] for j in jobs) == ["bottom", "dress", "outfit", "top"]
    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * 4
    assert emulator.stats()["submits"] == before + 4  # "top-again" was not paid for
    [top_job] = [j for j in jobs if j["look_id"] == "top"]
    assert top_job["duplicate_looks"] == ["top-again"]
    assert jobs_store.budget_spent(day)["spent"] == spent + 4
    assert len([n for n in notes if n["message"]["event"] == "job.succeeded"]) == 4
    assert not [n for n in notifications_from(stack.client("sqs"), watcher)
                if n["message"]["event"] == "budget.reached"]  # once a day
