"""Clock formatting, configuration checks and the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from tryon_local.emulator import EmulatorConfig, ModelQuota
from tryon_local.emulator.clock import EmulatorClock, format_provider_time, parse_list_time


def test_provider_time_is_china_standard_time_with_milliseconds() -> None:
    # 2025-06-30 06:37:53.838 UTC is 14:37:53.838 in Beijing.
    assert format_provider_time(1751265473.8389) == "2025-06-30 14:37:53.838"
    assert parse_list_time("20250630143753") == 1751265473.0


def test_clock_scales_durations_and_only_moves_forward() -> None:
    clock = EmulatorClock(speedup=10, wall=lambda: 1000.0)
    assert clock.scaled(30) == 3.0
    clock.advance(86400)
    assert clock.now() == 87400.0
    with pytest.raises(ValueError):
        clock.advance(-1)


@pytest.mark.parametrize(
    "kwargs",
    [{"gen_time": (30, 15)}, {"speedup": 0}, {"api_keys": frozenset()},
     {"model_quotas": {"aitryon": ModelQuota(10, 1, 0)}},
     {"model_quotas": {"qwen-image-3.0": ModelQuota(20, 30)}}],
)
def test_config_rejects_nonsense(kwargs) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**kwargs)


def test_command_line_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tryon_local.emulator", "--port", "0", "--speedup", "50",
         "--gen-time", "1", "2", "--api-key", "sk-a", "--api-key", "sk-b", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.split("base URL ", 1)[1].split()[0]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/v1")
        for key in ("sk-a", "sk-b"):
            response = _get_with_retry(f"{base_url}/tasks/x", key)
            assert response.json()["output"]["task_status"] == "UNKNOWN"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _get_with_retry(url: str, key: str) -> httpx.Response:
    # The URL is printed just before uvicorn starts accepting connections.
    for _ in range(50):
        try:
            return httpx.get(url, headers={"Authorization": f"Bearer {key}"})
        except httpx.ConnectError:
            time.sleep(0.1)
    raise AssertionError("the command-line emulator never answered")
