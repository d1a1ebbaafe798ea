"""The promise table in docs/promises.md cannot rot: the tests it names exist, and it names ours."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "promises.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def table_rows() -> list[tuple[str, list[tuple[str, str]]]]:
    """(promise, [(test file, test name), ...]) for every row of the table."""
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            rows.append((cells[1], REFERENCE.findall(cells[2])))
    return rows


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_test_the_table_names_exists():
    rows = table_rows()
    assert len(rows) >= 20
    missing = []
    for promise, references in rows:
        assert promise and references, f"a promise without a test: {promise!r}"
        for file, name in references:
            path = ROOT / file
            if not path.is_file() or name not in defined_tests(path):
                missing.append(f"{file}::{name}")
    assert not missing, f"docs/promises.md names tests that do not exist: {missing}"


def test_every_hardening_test_is_in_the_table():
    named = {(file, name) for _, references in table_rows() for file, name in references}
    folder = Path(__file__).parent
    ours = {(str(path.relative_to(ROOT)), name) for path in sorted(folder.glob("test_*.py"))
            for name in defined_tests(path)}
    assert not ours - named, f"hardening tests missing from docs/promises.md: {sorted(ours - named)}"
