"""The installed layout: node/ and cli/ ship as raftlog.node and raftlog.cli.

Generic top-level packages named ``node`` or ``cli`` would collide with other
distributions in a user's site-packages, and importing a module under two names
would load it twice (two copies of every class and registry). So every import of
the server and the command line goes through ``raftlog.``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("raftlog", "node", "cli", "tests")


def _python_files() -> list[Path]:
    files: list[Path] = []
    for top in SOURCES:
        for path in (REPO / top).rglob("*.py"):
            # raftlog/node and raftlog/cli are the links that install node/ and cli/.
            if path.relative_to(REPO).parts[:2] in {("raftlog", "node"), ("raftlog", "cli")}:
                continue
            if "v1" not in path.relative_to(REPO).parts[:2]:
                files.append(path)
    return files


def test_nothing_imports_node_or_cli_as_top_level_packages() -> None:
    offenders: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in {"node", "cli"}:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    assert not offenders, "import these through raftlog.: " + ", ".join(offenders)


def test_node_and_cli_install_under_the_raftlog_name() -> None:
    import raftlog.cli.main
    import raftlog.node.app

    assert Path(raftlog.node.app.__file__).resolve() == REPO / "node" / "app.py"
    assert Path(raftlog.cli.main.__file__).resolve() == REPO / "cli" / "main.py"
