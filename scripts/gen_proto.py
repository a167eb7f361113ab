"""Regenerate raftlog/v1 from proto/ (`make proto`); `--check` fails when stale.

Generation runs into a temporary directory and is compared file by file, so the
staleness test and `make proto` use exactly the same steps.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "raftlog" / "v1"
HEADER = '"""Generated from proto/raftlog/v1 by `make proto`; do not edit."""\n'


def generate(into: Path) -> list[Path]:
    protos = sorted(PROTO_DIR.glob("raftlog/v1/*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={into}",
        f"--pyi_out={into}",
        f"--grpc_python_out={into}",
        *[str(p.relative_to(PROTO_DIR)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = into / "raftlog" / "v1"
    (generated / "__init__.py").write_text(HEADER)
    return sorted(generated.iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if raftlog/v1 is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp))
        if args.check:
            names = {f.name for f in files}
            current = {f.name for f in OUT_DIR.glob("*") if f.is_file()}
            stale = [f.name for f in files if not (OUT_DIR / f.name).exists()
                     or not filecmp.cmp(f, OUT_DIR / f.name, shallow=False)]
            extra = sorted(current - names)
            if stale or extra:
                print(f"raftlog/v1 is stale (changed: {stale}, extra: {extra}); run `make proto`",
                      file=sys.stderr)
                return 1
            return 0
        shutil.rmtree(OUT_DIR, ignore_errors=True)
        OUT_DIR.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, OUT_DIR / f.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
