"""The house style, checked in the suite (so in CI): ruff's linter and formatter (pyproject.toml's [tool.ruff]) pass on
every file the repository tracks. Fix with `ruff check --fix . && ruff format .`."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check", "--output-format", "concise"], ["format", "--check"]])
def test_ruff_finds_nothing_to_change(command):
    done = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout}{done.stderr}"
