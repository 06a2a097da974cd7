"""Cold start of each function: import time of its handler module, measured with
`python -X importtime` (median of several fresh interpreters), its largest
contributors, and optionally the size of the package `sam build` makes.

    .venv/bin/python bench/cold_start.py [--runs 7] [--build]

The handler is imported as Lambda would import it: with only what its package
ships (the pinned requirements functions/Makefile gives it, as wheels for this
machine), the runtime's AWS SDK (stood in for by requirements-sdk.txt's pins),
no site-packages (`python -S`), and LAMBDA_TASK_ROOT set, which the X-Ray SDK
reads to skip the centralized-sampling client it makes everywhere else.
Writes bench/results/cold_start.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from tryon_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cold_start.json"
FUNCTIONS = ROOT / "functions"
SITE = ROOT / ".bench-cache" / "cold-start"  # the packages' dependencies, per kind
# Modules whose cumulative import time says where a cold start goes (a package is
# charged to the first module that imports it).
WATCHED = ("aws_xray_sdk.core", "botocore.session", "boto3", "httpx", "PIL.Image",
           "pillow_heif", "fastjsonschema", "tryon.preflight", "tryon.manifest",
           "tryon.stages.intake")


def handlers() -> dict[str, str]:
    """Function logical id -> handler module, read from the template."""
    resources = load_template(ROOT / "template.yaml")["Resources"]
    return {name: spec["Properties"]["Handler"].rsplit(".", 1)[0]
            for name, spec in resources.items() if spec["Type"] == "AWS::Serverless::Function"}


def requirement_files(function: str) -> list[Path]:
    """What functions/Makefile installs for `function`."""
    makefile = (FUNCTIONS / "Makefile").read_text()
    listed = {name: set(re.search(rf"^{name} := (.*)$", makefile, re.M)[1].split())
              for name in ("IMAGE_FUNCTIONS", "SDK_FUNCTIONS", "API_FUNCTIONS")}
    return [FUNCTIONS / "requirements.txt",
            *([FUNCTIONS / "requirements-images.txt"]
              if function in listed["IMAGE_FUNCTIONS"] else []),
            *([FUNCTIONS / "requirements-sdk.txt"] if function in listed["SDK_FUNCTIONS"] else []),
            *([FUNCTIONS / "requirements-api.txt"] if function in listed["API_FUNCTIONS"] else [])]


def site_for(files: list[Path]) -> Path:
    """A folder with exactly these pinned requirements (wheels for this machine)."""
    folder = SITE / "-".join(f.stem for f in files)
    if not folder.exists():
        scratch = folder.with_suffix(".partial")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--disable-pip-version-check", "--target", str(scratch),
                        *(arg for f in files for arg in ("-r", str(f)))], check=True)
        scratch.rename(folder)
    return folder


def import_profile(module: str, paths: list[Path]) -> dict[str, int]:
    """Cumulative import microseconds of the module and of the watched packages."""
    env = {"PATH": os.environ["PATH"], "POWERTOOLS_TRACE_DISABLED": "false",
           "PYTHONPATH": os.pathsep.join(str(p) for p in [FUNCTIONS, *paths]),
           "LAMBDA_TASK_ROOT": str(FUNCTIONS), "AWS_LAMBDA_FUNCTION_NAME": "cold-start",
           "AWS_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "tryon"}
    err = subprocess.run([sys.executable, "-S", "-X", "importtime", "-c", f"import {module}"],
                         capture_output=True, text=True, check=True, env=env).stderr
    cumulative = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, total, name = (part.strip() for part in line.split("|"))
        if total.isdigit():
            cumulative[name] = int(total)
    return {"total": cumulative[module],
            **{name: cumulative[name] for name in WATCHED if name in cumulative}}


def package_sizes() -> dict[str, dict[str, int]]:
    """`sam build` into a scratch folder; bytes on disk and zipped, per function."""
    with tempfile.TemporaryDirectory() as scratch:
        build = Path(scratch) / "build"
        subprocess.run([str(Path(sys.executable).parent / "sam"), "build", "--build-dir",
                        str(build), "--template", str(ROOT / "template.yaml")],
                       check=True, capture_output=True, cwd=ROOT,
                       # functions/Makefile installs the wheels with this venv's pip.
                       env={**os.environ, "SAM_CLI_TELEMETRY": "0",
                            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
        sizes = {}
        for function in sorted(p for p in build.iterdir() if p.is_dir()):
            files = [f for f in function.rglob("*") if f.is_file()]
            archive = Path(scratch) / f"{function.name}.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
                for f in files:
                    zipped.write(f, f.relative_to(function))
            sizes[function.name] = {"unzipped": sum(f.stat().st_size for f in files),
                                    "zipped": archive.stat().st_size}
        return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--build", action="store_true", help="also measure sam build output")
    args = parser.parse_args()
    report: dict = {"date": time.strftime("%Y-%m-%d"), "machine": {
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "platform": platform.platform()}, "runs": args.runs, "functions": {}}
    runtime_sdk = site_for([FUNCTIONS / "requirements-sdk.txt"])
    for function, module in handlers().items():
        paths = [site_for(requirement_files(function)), runtime_sdk]
        runs = [import_profile(module, paths) for _ in range(args.runs)]
        report["functions"][function] = {
            "module": module,
            "import_ms": {key: round(statistics.median(r.get(key, 0) for r in runs) / 1000, 1)
                          for key in runs[0]},
        }
    if args.build:
        for function, size in package_sizes().items():
            report["functions"].setdefault(function, {})["package_bytes"] = size
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'function':<24} {'import (median)':>16}  largest parts")
    for function, data in report["functions"].items():
        parts = sorted(((k, v) for k, v in data["import_ms"].items() if k != "total"),
                       key=lambda kv: -kv[1])[:3]
        size = data.get("package_bytes")
        extra = f"  package {size['zipped'] / 2**20:.1f} MB zipped" if size else ""
        print(f"{function:<24} {data['import_ms']['total']:>13.0f} ms  "
              + ", ".join(f"{k} {v:.0f} ms" for k, v in parts) + extra)
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
