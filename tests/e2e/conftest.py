"""One embedded stack per test process: moto (Step Functions executing the real
ASL, Lambda running the real handlers) + the provider emulator over HTTP."""

import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from tryon.adapters.repositories import repositories
from tryon_local.driver import Driver
from tryon_local.runtime import LocalOptions, LocalStack

# The emulator's clock and the state machine's waits run this much faster:
# a 15-30 s generation takes 1.5-3 s.
SPEEDUP = 10.0
# A provider answer later than this is lost to the functions (tests of lost submits).
READ_TIMEOUT_SECONDS = 3
# A synchronous generation (15-45 s at the provider, 1.5-4.5 s here) answered later
# than this is lost (tests of lost call answers).
CALL_TIMEOUT_SECONDS = 8
WEBHOOK_RETRY_SECONDS = "1,1"  # two retries: the third attempt is the last


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> LocalStack:
    workdir = tmp_path_factory.mktemp("stack")
    options = LocalOptions(speedup=SPEEDUP, seed=7, workdir=workdir, function_env={
        "PROVIDER_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS),
        "CALL_TIMEOUT_SECONDS": str(CALL_TIMEOUT_SECONDS),
        # Webhook retries a second apart (tests/e2e/test_webhooks.py), not over a day.
        "WEBHOOK_RETRY_SECONDS": WEBHOOK_RETRY_SECONDS},
        # Bucket manifests with a retailer's instruction (tests/e2e/test_successor_models.py).
        parameters={"AllowManifestInstructions": "true",
                    # Every test client is 127.0.0.1: the firewall's per-address rule
                    # would count them as one (bench/api_flood.py measures it).
                    "ApiRequestsPerMinute": "1000000"})
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="session")
def driver(stack) -> Driver:
    return Driver(stack, progress=lambda line: None)


class EmulatorControl:
    """The emulator's fault knobs and counters (test-only endpoints)."""

    def __init__(self, root_url: str) -> None:
        self.http = httpx.Client(base_url=root_url, timeout=10)

    def fault(self, **body) -> None:
        self.http.post("/_emulator/faults", json=body).raise_for_status()

    def stats(self) -> dict:
        return self.http.get("/_emulator/stats").raise_for_status().json()

    def tasks(self) -> list[dict]:
        return self.http.get("/_emulator/tasks").raise_for_status().json()

    def hold(self, task_id: str, hold: bool) -> None:
        self.http.post(f"/_emulator/tasks/{task_id}/hold", json={"hold": hold})

    def retire(self, model: str, retired: bool = True) -> None:
        self.http.post("/_emulator/retire", json={"model": model, "retired": retired}
                       ).raise_for_status()

    def disarm(self) -> None:
        self.http.delete("/_emulator/faults").raise_for_status()


@pytest.fixture(scope="session")
def emulator(stack) -> EmulatorControl:
    return EmulatorControl(stack.emulator.root_url)


@pytest.fixture(autouse=True)
def _disarmed_emulator(request):
    """After each test on the stack, disarm the faults it left armed and release the
    tasks it left held, so a test that stopped midway cannot fail or stall the next
    one's tasks. (Not a reset: that would forget tasks the stack still follows.)"""
    control = request.getfixturevalue("emulator") if "stack" in request.fixturenames else None
    yield
    if control is not None:
        control.disarm()


@pytest.fixture
def call_timeout() -> float:
    """How long the stack's functions wait for a synchronous generation's answer."""
    return CALL_TIMEOUT_SECONDS


@pytest.fixture
def retire(stack, emulator):
    """Have the emulator answer models as retired for one test; afterwards they are
    served again and the stack forgets that they were refused."""
    retired: list[str] = []

    def retire_model(model: str) -> None:
        emulator.retire(model)
        retired.append(model)

    yield retire_model
    table = stack.resource("dynamodb").Table(stack.outputs["JobsTableName"])
    for model in retired:
        emulator.retire(model, retired=False)
        table.delete_item(Key={"pk": f"RETIRED#{model}", "sk": "RETIRED"})


@pytest.fixture
def out_dir(tmp_path) -> Path:
    return tmp_path / "out"


def stores_of(stack: LocalStack) -> SimpleNamespace:
    """The stack's repositories of the jobs table, on the test's credentials."""
    return SimpleNamespace(**repositories(stack.outputs["JobsTableName"],
                                          stack.resource("dynamodb"),
                                          stack.outputs["CredentialsTableName"]))


@pytest.fixture
def stores(stack) -> SimpleNamespace:
    return stores_of(stack)


@pytest.fixture
def budget_spent(stack):
    """While the test runs, today's image budget stays spent (the limit is set to what
    was spent each time it is called): new looks wait QUEUED for it. Afterwards the
    stack's budget is back, and today's once-a-day `budget.reached` notice is open
    again for the next test that needs it."""
    from tryon.settings import Timebase

    budget = stores_of(stack).budget
    clock = Timebase(stack.options.speedup, stack.time_anchor)
    if 86400 - clock.now() % 86400 < 1200:  # the pipeline's UTC day turns within 2 min
        time.sleep(1200 / stack.options.speedup)
    day = time.strftime("%Y-%m-%d", time.gmtime(clock.now()))

    def spend() -> None:
        budget.set_override(budget.spent(day)["spent"])

    yield spend
    budget.set_override(None)
    budget.release_notice(day)
