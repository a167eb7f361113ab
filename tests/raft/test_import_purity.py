"""The Raft core is pure: no I/O, threads, clock or process-level modules."""

from __future__ import annotations

import ast
from pathlib import Path

import raftlog.raft

FORBIDDEN = {"asyncio", "grpc", "rocksdict", "time", "threading", "socket", "os", "node", "cli"}
RAFT_DIR = Path(raftlog.raft.__file__).parent


def _imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(n.lineno, a.name.split(".")[0]) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out.append((n.lineno, n.module.split(".")[0]))
        elif isinstance(n, ast.Call) and getattr(n.func, "id", None) == "__import__":
            out.append((n.lineno, "__import__"))
    return out


def test_core_sources_exist() -> None:
    names = {p.name for p in RAFT_DIR.glob("*.py")}
    assert {"node.py", "types.py", "storage.py", "log.py", "progress.py", "quorum.py", "roles.py"} <= names


def test_no_forbidden_imports() -> None:
    bad = []
    for path in sorted(RAFT_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for lineno, root in _imported_roots(tree):
            if root in FORBIDDEN or root == "__import__" or root == "importlib":
                bad.append(f"{path.name}:{lineno} imports {root}")
    assert not bad, "raftlog/raft must stay pure:\n" + "\n".join(bad)


def test_random_only_for_types() -> None:
    """random is imported only to annotate the injected rng; nothing calls the
    module-level functions (which would share global state)."""
    for path in sorted(RAFT_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "random":
                assert n.attr == "Random", f"{path.name}:{n.lineno} uses random.{n.attr}"
            if isinstance(n, ast.ImportFrom) and n.module == "random":
                raise AssertionError(f"{path.name}:{n.lineno} imports names from random")


def test_the_checker_sees_imports() -> None:
    tree = ast.parse("import time\nfrom asyncio import sleep\nimport os.path\n")
    assert [r for _, r in _imported_roots(tree)] == ["time", "asyncio", "os"]


def test_no_print_calls() -> None:
    for path in sorted(RAFT_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print":
                raise AssertionError(f"{path.name}:{n.lineno} calls print")
