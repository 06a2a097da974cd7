"""`tryon local run`: the user-facing command, in its own process (and so its own
stack), driving a separately started DashScope-compatible server."""

import json
import os
import shutil
import subprocess
import sys

from PIL import Image
from tryon_local.driver import SAMPLES
from tryon_local.emulator import EmulatorConfig, serve_in_thread


def tryon(*args: str, provider_url: str, key: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tryon_local.cli", "local", "run", *args, "--json",
         "--speedup", "10", "--provider-url", provider_url],
        env={**os.environ, "DASHSCOPE_API_KEY": key},
        capture_output=True, text=True, timeout=180, check=False)


def test_local_run_prints_one_json_document(tmp_path):
    config = EmulatorConfig(api_keys=frozenset({"sk-cli-test"}), speedup=10, seed=3)
    with serve_in_thread(config) as server:
        done = tryon("--person", str(SAMPLES / "person.jpg"), "--bottom",
                     str(SAMPLES / "bottom.jpg"), "--resolution", "1280", "--no-restore-face",
                     "--model", "aitryon", "--out", str(tmp_path),
                     provider_url=server.base_url, key="sk-cli-test")
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


def test_a_manifest_through_the_providers_temporary_upload(tmp_path):
    """--manifest/--images, with InputTransport=provider-upload: the inputs (and the
    person photo for the parsing model) reach the provider as oss:// uploads."""
    images = tmp_path / "photos"
    (images / "models").mkdir(parents=True)
    shutil.copy(SAMPLES / "person.jpg", images / "models" / "anna.jpg")
    shutil.copy(SAMPLES / "top.jpg", images / "shirt.jpg")  # found by file name
    manifest = tmp_path / "spring.json"
    manifest.write_text(json.dumps({"version": 1, "attributes": {"retailer": "acme"}, "looks": [
        {"id": "shirt-own-bottom", "person": "models/anna.jpg", "top": "catalog/shirt.jpg",
         "keep": "bottom"}]}))
    config = EmulatorConfig(api_keys=frozenset({"sk-cli-test"}), speedup=10, seed=4)
    with serve_in_thread(config) as server:
        done = tryon("--manifest", str(manifest), "--images", str(images),
                     "--out", str(tmp_path / "out"), "--parameter",
                     "InputTransport=provider-upload",
                     provider_url=server.base_url, key="sk-cli-test")
        stats = server.state.stats()
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)
    [job] = document["jobs"]
    assert job["status"] == "SUCCEEDED", job
    [batch] = document["batches"]
    assert batch["status"] == "SUCCEEDED" and batch["attributes"] == {"retailer": "acme"}
    # person + top for try-on, person again for parsing (uploads serve one model)
    assert stats["uploads"] == 3 and stats["parsings"] == 1


