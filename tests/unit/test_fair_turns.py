"""Fair turns: interactive looks before batch looks of a model, and the tenants (each
integration, and bucket uploads as one) taking turns within a priority."""

from tryon.job_record import JobStatus
from tryon.stages.admission import admit_or_queue, release_slot

MODEL = "qwen-image-3.0-pro"


def queue(fake, job_id: str, owner: str | None, priority: str) -> None:
    fake.look(job_id, MODEL, owner=owner, priority=priority)
    assert not admit_or_queue(fake.ctx, job_id, MODEL, expect=[JobStatus.RECEIVED],
                              priority=priority, owner=owner)


def admissions(fake, holders: list[str], count: int) -> list[str]:
    """Give slots back one at a time, as tasks end: who gets each."""
    order = []
    for _ in range(count):
        admitted = release_slot(fake.ctx, MODEL, holders.pop(0), send=False)
        assert len(admitted) == 1
        order += admitted
        holders += admitted
    return order


def full(fake) -> list[str]:
    slots = fake.ctx.capacity.of(MODEL).slots
    return [fake.admitted(f"running-{i}", MODEL) for i in range(slots)]


def test_a_late_tenants_interactive_look_goes_first_and_its_batch_interleaves(fake):
    holders = full(fake)
    for i in range(100):
        queue(fake, f"a-{i:03}", "retailer-a", "batch")
    queue(fake, "b-live", "retailer-b", "interactive")
    for i in range(10):
        queue(fake, f"b-{i:02}", "retailer-b", "batch")
    order = admissions(fake, holders, 111)
    assert order[0] == "b-live"  # the next free slot
    assert order[1:21] == [job for i in range(10) for job in (f"a-{i:03}", f"b-{i:02}")]
    assert order[21:] == [f"a-{i:03}" for i in range(10, 100)]  # A's own order kept
    assert sorted(order) == sorted(set(order)) and len(order) == 111  # nothing twice


def test_a_tenant_back_from_idle_takes_turns_from_now_without_credit(fake):
    holders = full(fake)
    for i in range(6):
        queue(fake, f"a-{i}", "retailer-a", "batch")
    first = admissions(fake, holders, 4)
    assert first == ["a-0", "a-1", "a-2", "a-3"]
    queue(fake, "b-0", "retailer-b", "batch")
    queue(fake, "b-1", "retailer-b", "batch")
    # B starts at the clock (the turn A was served last), not at 0: it takes the next
    # turn, then alternates; it cannot jump A's whole queue for the time it was away.
    assert admissions(fake, holders, 4) == ["b-0", "a-4", "b-1", "a-5"]


def test_bucket_uploads_are_one_tenant_beside_the_integrations(fake):
    holders = full(fake)
    for i in range(3):
        queue(fake, f"bucket-{i}", None, "batch")
    for i in range(3):
        queue(fake, f"c-{i}", "retailer-c", "batch")
    assert admissions(fake, holders, 6) == ["bucket-0", "c-0", "bucket-1", "c-1",
                                            "bucket-2", "c-2"]


def test_interactive_looks_of_every_tenant_come_before_any_batch_look(fake):
    holders = full(fake)
    queue(fake, "a-batch", "retailer-a", "batch")
    queue(fake, "a-live", "retailer-a", "interactive")
    queue(fake, "bucket-live", None, "interactive")
    assert admissions(fake, holders, 3) == ["a-live", "bucket-live", "a-batch"]
