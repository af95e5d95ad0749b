"""The README's tour is executed, so every output it shows is real."""

import doctest
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_examples():
    failures, tried = doctest.testfile(
        str(README), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert tried > 10
    assert failures == 0


def test_readme_shows_the_ci_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    command = next(line.split("=", 1)[1].strip("'") for line in ci.splitlines() if line.startswith("TEST_COMMAND="))
    assert command in README.read_text()
