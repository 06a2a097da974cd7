"""Checks a function built by `sam build` (functions/Makefile): every native module
is for CPython 3.13 on arm64 Linux, and the image libraries are the pinned ones."""

import re
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "functions" / "requirements.txt"


def main(artifact: Path) -> None:
    native = list(artifact.rglob("*.so"))
    wrong = [str(p.relative_to(artifact)) for p in native
             if ".cpython-" in p.name and "cpython-313-aarch64-linux-gnu" not in p.name]
    if not native or wrong:
        sys.exit(f"not built for python3.13 arm64: {wrong or 'no native modules'}")
    for pin in re.findall(r"^(pillow(?:-heif)?)==(\S+)$", REQUIREMENTS.read_text(), re.M):
        name, version = pin[0].replace("-", "_"), pin[1]
        if not (artifact / f"{name}-{version}.dist-info").is_dir():
            sys.exit(f"{name} {version} missing from {artifact}")
    if not (artifact / "tryon" / "handlers" / "intake.py").is_file():
        sys.exit("the tryon package is missing")
    print(f"{artifact}: {len(native)} native modules for cpython-313 aarch64; pins present")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
