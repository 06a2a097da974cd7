"""What the functions are built with and what each may reach: the runtime, the
library versions the tests run on, and the provider key kept away from the one
function that decodes uploads."""

import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

from tryon_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
GLOBALS = TEMPLATE["Globals"]["Function"]
FUNCTIONS = {name: spec for name, spec in TEMPLATE["Resources"].items()
             if spec["Type"] == "AWS::Serverless::Function"}


FUNCTIONS_DIR = ROOT / "functions"
# What the python3.13 runtime provides, and the packages must not ship.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six",
                    "urllib3"}


def _pins(path: Path) -> dict[str, str]:
    """name -> exact version of a requirements file (every line pinned with ==)."""
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_the_functions_are_built_with_the_libraries_the_tests_run_on():
    lean = _pins(FUNCTIONS_DIR / "requirements.txt")
    images = _pins(FUNCTIONS_DIR / "requirements-images.txt")
    sdk = _pins(FUNCTIONS_DIR / "requirements-sdk.txt")
    api = _pins(FUNCTIONS_DIR / "requirements-api.txt")
    assert not (set(lean) | set(images) | set(api)) & RUNTIME_PROVIDED
    assert set(sdk) == RUNTIME_PROVIDED
    for name, version in {**lean, **images, **sdk, **api}.items():
        assert metadata.version(name) == version, f"tests run {name} {metadata.version(name)}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        if "==" in requirement:  # the project pins what the packages ship
            name, version = requirement.split("==")
            assert {**lean, **images, **api}[name.split("[")[0].lower()] == version
    # Releases with public advisories (pillow-heif < 1.7, Pillow < 12.3) stay out.
    assert tuple(map(int, images["pillow"].split("."))) >= (12, 3)
    assert tuple(map(int, images["pillow-heif"].split("."))) >= (1, 7)


def test_every_function_runs_python_3_13_built_by_the_makefile_for_arm64():
    assert GLOBALS["Runtime"] == "python3.13" and GLOBALS["Architectures"] == ["arm64"]
    makefile = (ROOT / "functions" / "Makefile").read_text()
    assert "--python-version 3.13" in makefile and "aarch64" in makefile
    assert "--only-binary=:all:" in makefile
    for name, spec in FUNCTIONS.items():
        assert spec.get("Metadata", {}).get("BuildMethod") == "makefile", name
        assert "Runtime" not in spec["Properties"], f"{name} overrides the runtime"


def _loaded(spec: dict) -> set[str]:
    """The modules a function's handler loads when it is imported (a fresh process)."""
    return _loaded_by(spec["Properties"]["Handler"].rsplit(".", 1)[0])


@cache
def _loaded_by(module: str) -> frozenset[str]:
    probe = f"import sys, {module}; print(' '.join(sys.modules))"
    return frozenset(subprocess.run([sys.executable, "-c", probe], check=True,
                                    capture_output=True, text=True,
                                    cwd=ROOT / "functions").stdout.split())


def _reads_the_key(spec: dict) -> bool:
    variables = {**GLOBALS.get("Environment", {}).get("Variables", {}),
                 **spec["Properties"].get("Environment", {}).get("Variables", {})}
    actions = json.dumps(spec["Properties"].get("Policies", []))
    return "PROVIDER_API_KEY_SECRET_ARN" in variables or "secretsmanager" in actions


def _makefile_list(name: str) -> set[str]:
    makefile = (FUNCTIONS_DIR / "Makefile").read_text()
    return set(re.search(rf"^{name} := (.+)$", makefile, re.M)[1].split())


def test_only_the_functions_that_decode_images_ship_the_image_libraries():
    # Finalize decodes results (imported when it runs); the others load Pillow at import.
    decoding = {name for name, spec in FUNCTIONS.items() if "PIL" in _loaded(spec)}
    assert _makefile_list("IMAGE_FUNCTIONS") == decoding | {"FinalizeFunction"}


def test_only_the_conditional_writers_ship_their_own_sdk():
    """S3 conditional writes (If-None-Match) came with botocore 1.35.x; the runtime's
    boto3 is not guaranteed to be that new. Only finalize's result writes and the API's
    manifests and batch files use them."""
    assert _makefile_list("SDK_FUNCTIONS") == {"FinalizeFunction", "ApiFunction"}
    code = {path.relative_to(FUNCTIONS_DIR).as_posix(): path.read_text()
            for path in (FUNCTIONS_DIR / "tryon").rglob("*.py")}
    assert [p for p, text in code.items() if "IfNoneMatch" in text] == [
        "tryon/adapters/storage.py"]
    assert [p for p, text in code.items() if "storage.store_result(" in text] == [
        "tryon/stages/completion.py"]
    # A batch's retry file is written by the API (or the operator's own SDK), never by
    # the sweep, which imports that stage only to go on with cancels.
    assert sorted(p for p, text in code.items() if "if_absent=True" in text) == [
        "tryon/stages/api_requests.py", "tryon/stages/batch_steering.py"]


def test_only_the_api_ships_pydantic():
    users = {name for name, spec in FUNCTIONS.items() if "pydantic" in _loaded(spec)}
    assert users == _makefile_list("API_FUNCTIONS") == {"ApiFunction"}


def test_uploads_are_decoded_only_by_a_function_that_cannot_read_the_provider_key():
    decoding = {name for name, spec in FUNCTIONS.items()
                if "tryon.preflight" in _loaded(spec)}
    reading_the_key = {name for name, spec in FUNCTIONS.items() if _reads_the_key(spec)}
    assert "IntakeFunction" in decoding
    # The API asks ProviderCancelFunction to cancel a task still queued at the provider.
    assert reading_the_key == {"SubmitFunction", "PollFunction", "CallFunction",
                               "SweepFunction", "ProviderCancelFunction"}
    assert not decoding & reading_the_key
