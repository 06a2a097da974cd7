"""The benchmarks keep working as the code changes (measured numbers are not asserted)."""

import importlib.util
from pathlib import Path

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
        "SubmitFunction": "tryon.handlers.submit", "PollFunction": "tryon.handlers.poll",
        "FinalizeFunction": "tryon.handlers.finalize",
        "RecordFailureFunction": "tryon.handlers.record_failure",
        "SweepFunction": "tryon.handlers.sweep", "CallFunction": "tryon.handlers.call",
        "DeadLetterFunction": "tryon.handlers.dead_letter"}
    profile = cold_start.import_profile("tryon.handlers.poll")
    assert profile["total"] > 0 and "aws_xray_sdk.core" in profile
