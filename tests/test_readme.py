"""The README's set-up commands and what CI runs cannot drift apart.

README.md gives two commands under "Set-up": install then ``vfr demo``, and install then
``pytest``. ``.ci/run`` must install exactly the same way (same steps, same order; only its
virtual environment's folder name and pip's ``--quiet`` flag may differ) and then run the same
test command. Executing the README's block verbatim (a fresh install of the lock file, then the
whole suite) takes too long for the test suite; CI itself is that execution, and this test keeps
it honest.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
CI = REPO / ".ci" / "run"

#: Differences allowed between the README and CI: CI's venv folder, pip's quiet flag.
CI_VENV = ".venv-ci"


def fenced_blocks(markdown: str, section: str) -> list[str]:
    """The fenced code blocks of the ``## <section>`` part of a Markdown text."""
    match = re.search(rf"^## {re.escape(section)}.*?$(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S)
    assert match, f"README has no '## {section}' section"
    return [b.strip() for b in re.findall(r"^```[^\n]*\n(.*?)^```", match.group(1), flags=re.M | re.S)]


def steps(command: str) -> list[list[str]]:
    """A ``a && b && c`` line as its commands, each a list of words, ``--quiet``/``-q`` left out
    and CI's venv folder named as the README's."""
    out = []
    for part in command.split("&&"):
        words = [w.replace(CI_VENV, ".venv") for w in shlex.split(part) if w not in ("--quiet", "-q")]
        if words:
            out.append(words)
    return out


def readme_commands() -> tuple[list[list[str]], list[list[str]]]:
    blocks = fenced_blocks(README.read_text(encoding="utf-8"), "Set-up")
    assert len(blocks) >= 2, f"expected the demo and the test command under Set-up, got {blocks}"
    demo, test = (steps(b) for b in blocks[:2])
    return demo, test


def ci_commands() -> list[list[str]]:
    """The commands of .ci/run from the venv creation on, comments and blank lines left out;
    ``export`` lines (CI's private VFR_HOME) left out too."""
    lines = []
    for raw in CI.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#") and not line.startswith("export "):
            lines.append(line)
    start = next(i for i, line in enumerate(lines) if "-m venv" in line)
    return [s for line in lines[start:] for s in steps(line)]


def test_readme_has_the_two_setup_commands_with_the_same_install() -> None:
    demo, test = readme_commands()
    assert demo[-1] == ["vfr", "demo"], demo
    assert test[-1] == ["pytest"], test
    assert demo[:-1] == test[:-1], "the README's two commands install differently"
    install = test[:-1]
    assert install[0][:3] == ["python3", "-m", "venv"], "the README does not create a virtual environment first"
    assert install[1] == [".", ".venv/bin/activate"], install


def test_ci_installs_exactly_as_the_readme_says() -> None:
    _, test = readme_commands()
    install, test_command = test[:-1], test[-1]
    ci = ci_commands()
    assert ci[:len(install)] == install, (
        "CI's install steps differ from README.md's (update both together):\n"
        f"README: {[shlex.join(s) for s in install]}\nCI:     {[shlex.join(s) for s in ci[:len(install) + 1]]}")
    assert ci[-1] == test_command, f"CI's last command {ci[-1]} is not the README's test command {test_command}"


def test_the_parsers_see_a_drift() -> None:
    """Self-check: a changed flag or an extra step is a difference."""
    assert steps("python -m pip install --quiet -r a.lock") == steps("python -m pip install -r a.lock")
    assert steps("python -m pip install -r a.lock") != steps("python -m pip install -U -r a.lock")
    assert steps(f"python3 -m venv {CI_VENV} && . {CI_VENV}/bin/activate") == \
        steps("python3 -m venv .venv && . .venv/bin/activate")
