"""The partition's state machine and the follower's fetch decisions are pure: no
asyncio, clock, gRPC, RocksDB or other I/O modules (the shell does all of that)."""

from __future__ import annotations

import ast
from pathlib import Path

import raftlog.node.broker.partition as partition_pkg

FORBIDDEN = {"asyncio", "grpc", "rocksdict", "time", "threading", "socket", "os", "random", "datetime", "structlog",
             "importlib"}
PURE_MODULES = ("state.py", "epochs.py", "follower.py")
#: Pure modules may use these project modules only (themselves free of I/O).
ALLOWED_PROJECT = {
    "raftlog.errors", "raftlog.records", "raftlog.topic_config", "raftlog.node.metadata.image",
    "raftlog.node.broker.partition.state", "raftlog.node.broker.partition.epochs",
    "raftlog.node.broker.partition.follower",
}
PACKAGE_DIR = Path(partition_pkg.__file__).parent


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(n.lineno, a.name) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out.append((n.lineno, n.module))
        elif isinstance(n, ast.ImportFrom):
            out.append((n.lineno, "relative import"))
        elif isinstance(n, ast.Call) and getattr(n.func, "id", None) == "__import__":
            out.append((n.lineno, "__import__"))
    return out


def test_pure_modules_exist() -> None:
    names = {p.name for p in PACKAGE_DIR.glob("*.py")}
    assert set(PURE_MODULES) | {"shell.py", "__init__.py"} <= names


def test_pure_modules_import_no_io() -> None:
    bad = []
    for name in PURE_MODULES:
        path = PACKAGE_DIR / name
        for lineno, module in _imports(ast.parse(path.read_text(), filename=str(path))):
            root = module.split(".")[0]
            if root in FORBIDDEN or module in ("__import__", "relative import"):
                bad.append(f"{name}:{lineno} imports {module}")
            elif root == "raftlog" and module not in ALLOWED_PROJECT:
                bad.append(f"{name}:{lineno} imports {module}")
    assert not bad, "the partition state machine must stay pure:\n" + "\n".join(bad)


def test_the_checker_sees_imports() -> None:
    tree = ast.parse("import time\nfrom asyncio import sleep\nfrom . import x\n")
    assert [m for _, m in _imports(tree)] == ["time", "asyncio", "relative import"]
