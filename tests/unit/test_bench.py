"""The benchmarks keep working as the code changes (measured numbers are not asserted)."""

import importlib
import importlib.util
import site
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cold_start.py"


def load_cold_start():
    spec = importlib.util.spec_from_file_location("cold_start", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cold_start_finds_every_handler_and_profiles_an_import():
    cold_start = load_cold_start()
    modules = cold_start.handlers()
    assert modules == {
        "IntakeFunction": "tryon.handlers.intake",
        "BatchRowsFunction": "tryon.handlers.batch_rows",
        "SubmitFunction": "tryon.handlers.submit", "PollFunction": "tryon.handlers.poll",
        "FinalizeFunction": "tryon.handlers.finalize",
        "RecordFailureFunction": "tryon.handlers.record_failure",
        "SweepFunction": "tryon.handlers.sweep", "CallFunction": "tryon.handlers.call",
        "DeadLetterFunction": "tryon.handlers.dead_letter", "ApiFunction": "tryon.handlers.api",
        "AuthorizerFunction": "tryon.handlers.authorizer",
        "ProviderCancelFunction": "tryon.handlers.provider_cancel",
        "WebhookDeliveryFunction": "tryon.handlers.webhook_delivery"}
    # The project's own environment stands in for a function's package here.
    profile = cold_start.import_profile("tryon.handlers.poll",
                                        [Path(site.getsitepackages()[0])])
    assert profile["total"] > 0 and "aws_xray_sdk.core" in profile
    assert "PIL.Image" not in profile  # a lean function never imports Pillow


def test_cold_start_gives_each_function_the_requirements_its_build_installs():
    cold_start = load_cold_start()
    names = {f: [p.name for p in cold_start.requirement_files(f)]
             for f in ("PollFunction", "IntakeFunction", "BatchRowsFunction",
                       "FinalizeFunction")}
    assert names == {
        "PollFunction": ["requirements.txt"],
        "IntakeFunction": ["requirements.txt", "requirements-images.txt"],
        "BatchRowsFunction": ["requirements.txt", "requirements-images.txt"],
        "FinalizeFunction": ["requirements.txt", "requirements-images.txt",
                             "requirements-sdk.txt"]}


def test_burst_measures_each_freed_slot_until_the_next_task_takes_it():
    sys.path.insert(0, str(BENCH.parent))
    try:
        burst = importlib.import_module("burst")
    finally:
        sys.path.remove(str(BENCH.parent))
    runs = [(0.0, 10.0), (0.0, 12.0), (11.0, 20.0), (12.5, 22.0), (20.2, 30.0)]
    # Two slots: the third task takes the slot freed at 10, the fourth the one
    # freed at 12, the fifth the one freed at 20.
    assert burst.idle_gaps(runs, 2) == [1.0, 0.5, pytest.approx(0.2)]
