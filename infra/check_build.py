"""Checks functions built by `sam build` (functions/Makefile): every native module is
for CPython 3.13 on arm64 Linux, each package holds exactly its pinned libraries
(the image libraries only where images are decoded, never what the runtime
provides), and its zipped size.

    python infra/check_build.py BUILD_DIR IMAGE_FUNCTION LEAN_FUNCTION API_FUNCTION
"""

import io
import sys
import zipfile
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")


def pins(name: str) -> dict[str, str]:
    lines = (FUNCTIONS / name).read_text().splitlines()
    return dict(line.strip().replace("-", "_").split("==") for line in lines
                if line.strip() and not line.startswith("#"))


def zipped_size(artifact: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in artifact.rglob("*"):
            if path.is_file():
                archive.write(path, path.relative_to(artifact))
    return len(buffer.getvalue())


def check(artifact: Path, expected: dict[str, str], ships_sdk: bool = False) -> str:
    native = list(artifact.rglob("*.so"))
    wrong = [str(p.relative_to(artifact)) for p in native
             if ".cpython-" in p.name and "cpython-313-aarch64-linux-gnu" not in p.name]
    if wrong:
        sys.exit(f"{artifact.name}: not built for python3.13 arm64: {wrong}")
    shipped = {p.name.removesuffix(".dist-info").rsplit("-", 1)[0].lower():
               p.name.removesuffix(".dist-info").rsplit("-", 1)[1]
               for p in artifact.glob("*.dist-info")}
    wanted = {name.lower(): version for name, version in expected.items()}
    if shipped != wanted:
        sys.exit(f"{artifact.name}: ships {sorted(shipped.items())}, "
                 f"expected {sorted(wanted.items())}")
    if not ships_sdk and any((artifact / name).exists() for name in RUNTIME_PROVIDED):
        sys.exit(f"{artifact.name}: ships what the runtime provides")
    if not (artifact / "tryon" / "handlers").is_dir():
        sys.exit(f"{artifact.name}: the tryon package is missing")
    return (f"{artifact.name}: {len(shipped)} pinned libraries, {len(native)} native "
            f"modules for cpython-313 aarch64, {zipped_size(artifact) / 1e6:.1f} MB zipped")


def main(build: Path, image_function: str, lean_function: str, api_function: str) -> None:
    lean = pins("requirements.txt")
    print(check(build / image_function, {**lean, **pins("requirements-images.txt")}))
    print(check(build / lean_function, lean))
    # The API function: Pydantic (a native core) and its own SDK for conditional writes.
    print(check(build / api_function, {**lean, **pins("requirements-sdk.txt"),
                                       **pins("requirements-api.txt")}, ships_sdk=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
