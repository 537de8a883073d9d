"""The README's set-up commands are what CI runs, verbatim.

README.md gives two commands under "Set-up": install then ``vfr demo``, and install then
``pytest``. ``.ci/run`` executes both blocks as written, extracted from README.md by
``.ci/readme_block.py``; these tests check the blocks' shape (a virtual environment first, the
same install in both, the lock file) and that CI runs them through that extractor.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CI = REPO / ".ci" / "run"
_spec = importlib.util.spec_from_file_location("readme_block", REPO / ".ci" / "readme_block.py")
assert _spec and _spec.loader
readme_block = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_block)


def steps(command: str) -> list[list[str]]:
    """A ``a && b && c`` line as its commands, each a list of words."""
    return [words for part in command.split("&&") if (words := shlex.split(part))]


def test_readme_has_the_two_setup_commands_with_the_same_install() -> None:
    demo, test = steps(readme_block.setup_block(1)), steps(readme_block.setup_block(2))
    assert demo[-1] == ["vfr", "demo"], demo
    assert test[-1] == ["pytest"], test
    assert demo[:-1] == test[:-1], "the README's two commands install differently"
    install = test[:-1]
    assert install[0][:3] == ["python3", "-m", "venv"], "the README does not create a virtual environment first"
    assert install[1] == [".", ".venv/bin/activate"], install
    assert ["python", "-m", "pip", "install", "-r", "requirements/dev.lock"] in install, install
    assert install[-1] == ["python", "-m", "pip", "install", "--no-deps", "-e", "."], install


def test_ci_executes_both_readme_blocks_verbatim() -> None:
    lines = [line.strip() for line in CI.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.strip().startswith("#")]
    runs = [line for line in lines if ".ci/readme_block.py" in line]
    assert len(runs) == 2 and "readme_block.py 1" in runs[0] and "readme_block.py 2" in runs[1], runs
    assert all('bash -euo pipefail -c "$(python3 .ci/readme_block.py' in line for line in runs), runs
    assert lines[-1] == runs[1], "the README's test command is not CI's last step"
    # the checks between the two run inside the venv the first block made
    assert ". .venv/bin/activate" in lines[lines.index(runs[0]) + 1:lines.index(runs[1])]


def test_the_extractor_prints_the_blocks_and_refuses_a_missing_one() -> None:
    out = subprocess.run([sys.executable, str(REPO / ".ci" / "readme_block.py"), "2"], check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out == readme_block.setup_block(2) and out.endswith("&& pytest")
    missing = subprocess.run([sys.executable, str(REPO / ".ci" / "readme_block.py"), "9"], check=False,
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "block 9 asked for" in missing.stderr
    assert readme_block.fenced_blocks("## Set-up\n```\na\n```\n## Next\n```\nb\n```\n", "Set-up") == ["a"]
