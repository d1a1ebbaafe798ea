"""The README's promises: its Python example runs, its commands match CI, its theory map is complete."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_the_python_api_example_runs(tiny_vae_run, capsys):
    example = code_blocks("python")[0].replace('"runs/demo"', repr(str(tiny_vae_run)))
    exec(compile(example, "README.md", "exec"), {})
    assert "torch.Size([16, 1, 8, 8])" in capsys.readouterr().out


def test_ci_runs_the_readme_test_command():
    test_command = code_blocks("bash")[1].strip().split("&&")[-1].strip()
    assert test_command.startswith(".venv/bin/python -m pytest")
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def table_rows(doc: str) -> list[str]:
    return [line for line in (ROOT / "docs" / doc).read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and not line.startswith(("| Item", "| #"))]


def test_readme_theory_map_matches_docs():
    rows = table_rows("theory-map.md")
    assert len(rows) >= 33
    for row in rows:
        assert row in README, f"README's theory map lacks: {row[:60]}"


def test_readme_promise_table_matches_docs():
    rows = table_rows("promises.md")
    assert len(rows) >= 20
    for row in rows:
        assert row in README, f"README's promise table lacks: {row[:60]}"


def test_no_placeholder_is_left():
    assert "_SECTION" not in README and "TODO" not in README
