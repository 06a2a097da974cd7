"""What the functions are built with and what each may reach: the runtime, the
library versions the tests run on, and the provider key kept away from the one
function that decodes uploads."""

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from tryon_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
GLOBALS = TEMPLATE["Globals"]["Function"]
FUNCTIONS = {name: spec for name, spec in TEMPLATE["Resources"].items()
             if spec["Type"] == "AWS::Serverless::Function"}


def _pins(lines: list[str]) -> dict[str, str]:
    return {re.split(r"[\[<>=]", line, maxsplit=1)[0].strip().lower(): line.strip()
            for line in lines if line.strip() and not line.startswith("#")}


def test_the_functions_are_built_with_the_libraries_the_tests_run_on():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    built = _pins((ROOT / "functions" / "requirements.txt").read_text().splitlines())
    assert built == _pins(project["dependencies"])
    for name in ("pillow", "pillow-heif"):
        pinned = built[name].split("==")[1]
        assert metadata.version(name) == pinned, f"tests run {name} {metadata.version(name)}"
    # Releases with public advisories (pillow-heif < 1.7, Pillow < 12.3) stay out.
    assert tuple(map(int, built["pillow"].split("==")[1].split("."))) >= (12, 3)
    assert tuple(map(int, built["pillow-heif"].split("==")[1].split("."))) >= (1, 7)


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
    module = spec["Properties"]["Handler"].rsplit(".", 1)[0]
    probe = f"import sys, {module}; print(' '.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                              text=True, cwd=ROOT / "functions").stdout.split())


def _reads_the_key(spec: dict) -> bool:
    variables = {**GLOBALS.get("Environment", {}).get("Variables", {}),
                 **spec["Properties"].get("Environment", {}).get("Variables", {})}
    actions = json.dumps(spec["Properties"].get("Policies", []))
    return "PROVIDER_API_KEY_SECRET_ARN" in variables or "secretsmanager" in actions


def test_uploads_are_decoded_only_by_a_function_that_cannot_read_the_provider_key():
    decoding = {name for name, spec in FUNCTIONS.items()
                if "tryon.preflight" in _loaded(spec)}
    reading_the_key = {name for name, spec in FUNCTIONS.items() if _reads_the_key(spec)}
    assert "IntakeFunction" in decoding
    assert reading_the_key == {"SubmitFunction", "PollFunction", "CallFunction",
                               "SweepFunction"}
    assert not decoding & reading_the_key
