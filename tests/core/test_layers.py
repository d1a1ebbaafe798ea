"""Imports point down the layer stack of docs/DEVELOPING.md (and shared/DESIGN.md §1), never up.

Every ``import`` and ``from … import`` in src/vaelab — including the ones inside functions,
which the code uses to keep ``vaelab --help`` fast — is resolved to the top-level part it
reaches, and that part must sit strictly below the importing one (or be the same part).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "vaelab"

# Lowest first. A part may import itself and the parts listed before it.
LAYERS = ["errors", "cpu", "fileio", "config", "imageio", "weights", "metrics", "theory", "distributions", "coding",
          "models", "data", "runs", "training", "evaluation", "apps", "report", "web", "cli", "__main__"]
RANK = {name: i for i, name in enumerate(LAYERS)}


_PARTS = set(LAYERS)


def _part(module: str) -> str | None:
    """vaelab.models.vae -> "models"; the package root itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _targets(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) of every vaelab import in a module's syntax tree."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "vaelab"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "vaelab":
                continue
            if target == "vaelab":   # from vaelab import X: X is a part, the version string, or the facade's
                out += [(node.lineno, f"vaelab.{a.name}" if a.name in _PARTS else "vaelab.<facade>")
                        for a in node.names if a.name != "__version__"]
            else:
                out.append((node.lineno, target))
    return out


def upward_imports(root: Path = SRC) -> list[str]:
    """Every import in the tree at ``root`` that reaches a part above (or beside) its own."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        is_package = rel.name == "__init__"
        module = ".".join(rel.parts[:-1] if is_package else rel.parts)
        source = _part(module)
        if source is None:
            continue    # vaelab/__init__.py: the facade (vaelab.load, vaelab.open_run) sits on top
        for line, target in _targets(ast.parse(path.read_text()), module, is_package):
            reached = _part(target)
            if reached == "<facade>":
                bad.append(f"{path.relative_to(root.parent)}:{line}: {source} imports the package facade "
                           "(vaelab.load, …); import from the part that defines it")
                continue
            if reached is None or reached == source:
                continue
            if source not in RANK or reached not in RANK:
                bad.append(f"{path.relative_to(root.parent)}:{line}: {source} -> {reached} (a part missing from LAYERS)")
            elif RANK[reached] >= RANK[source]:
                bad.append(f"{path.relative_to(root.parent)}:{line}: {source} imports {reached}, which is not below it")
    return bad


def test_every_import_points_down_the_layer_stack():
    assert upward_imports() == []


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert parts <= set(LAYERS), sorted(parts - set(LAYERS))


@pytest.mark.parametrize("source, line, verdict", [
    ("training", "from ..apps import common", "not below it"),          # the cycle the issue found: up
    ("runs", "from ..training.config import TrainConfig", "not below it"),
    ("runs", "from .. import training", "not below it"),
    ("models", "from ..theory import get_activation", None),             # down: fine
    ("apps", "import vaelab.cli", "not below it"),
    ("apps", "from .. import __version__", None),
    ("cli", "from .. import load", "package facade"),
])
def test_the_checker_catches_an_upward_import(tmp_path, source, line, verdict):
    root = tmp_path / "vaelab"
    (root / source).mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / source / "__init__.py").write_text("")
    (root / source / "mod.py").write_text(f"def f():\n    {line}\n")
    found = upward_imports(root)
    if verdict is None:
        assert found == []
    else:
        assert len(found) == 1 and verdict in found[0] and f"{source}/mod.py:2" in found[0], found
