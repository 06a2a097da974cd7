"""`tryon local run --json --provider-url`: the user-facing command, in its own
process, driving a separately started DashScope-compatible server."""

import json
import os
import subprocess
import sys

from PIL import Image
from tryon_local.driver import SAMPLES
from tryon_local.emulator import EmulatorConfig, serve_in_thread


def test_local_run_prints_one_json_document(tmp_path):
    config = EmulatorConfig(api_keys=frozenset({"sk-cli-test"}), speedup=10, seed=3)
    with serve_in_thread(config) as server:
        done = subprocess.run(
            [sys.executable, "-m", "tryon_local.cli", "local", "run",
             "--person", str(SAMPLES / "person.jpg"), "--bottom", str(SAMPLES / "bottom.jpg"),
             "--resolution", "1280", "--no-restore-face", "--model", "aitryon",
             "--json", "--out", str(tmp_path), "--speedup", "10",
             "--provider-url", server.base_url],
            env={**os.environ, "DASHSCOPE_API_KEY": "sk-cli-test"},
            capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)
    assert set(document) == {"jobs", "batches", "notifications"}
    assert document["batches"] == []  # a single look is no batch
    [job] = document["jobs"]
    assert {"job_id", "status", "result", "error", "provider_task_id", "polls",
            "timings"} <= set(job)
    assert set(job["timings"]) == {"received", "submitted", "provider_start", "provider_end",
                                   "finalized"}
    assert job["status"] == "SUCCEEDED" and job["error"] is None
    assert Image.open(job["result"]).size == (720, 1280)
    [note] = document["notifications"]
    assert note["job_id"] == job["job_id"] and note["model"] == "aitryon"
    assert note["parameters"] == {"resolution": 1280, "restore_face": False}
    assert "sk-cli-test" not in done.stdout + done.stderr
