"""README.md promises that stay true: the configuration reference matches the model, the quick start commands."""
from stacks.reference import END, README, START, markdown


def test_configuration_reference_is_current():
    text = README.read_text()
    block = text[text.index(START) + len(START):text.index(END)].strip()
    assert block == markdown(), "README.md configuration reference is stale: run `make docs`"


def test_quick_start_is_two_commands():
    quick = README.read_text().split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make up" in quick and "make test" in quick
