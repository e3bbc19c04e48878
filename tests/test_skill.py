"""``offload skill``: the SKILL.md lands where each agent reads skills, and its frontmatter parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import offload

EXPECTED = {
    ("claude", False): ".claude/skills/offload/SKILL.md",
    ("openclaw", False): ".openclaw/skills/offload/SKILL.md",
    ("codex", False): ".agents/skills/offload/SKILL.md",
    ("claude", True): ".claude/skills/offload/SKILL.md",
    ("openclaw", True): "skills/offload/SKILL.md",
    ("codex", True): ".agents/skills/offload/SKILL.md",
}


def frontmatter(text: str) -> dict[str, str]:
    """The ``key: value`` lines between the leading ``---`` fences (the Agent Skills format)."""
    lines = text.splitlines()
    assert lines[0] == "---"
    end = lines.index("---", 1)
    fields: dict[str, str] = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        assert sep, f"not a key: value line: {line!r}"
        fields[key.strip()] = value.strip()
    return fields


@pytest.fixture(autouse=True)
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command runs with a temporary home and from a temporary project directory."""
    (tmp_path / "home").mkdir()
    (tmp_path / "project").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "project")


def install(tmp_path: Path, *args: str) -> tuple[Path, Path, str]:
    run = offload("skill", "install", *args)
    assert run.code == 0, run.err
    return tmp_path / "home", tmp_path / "project", run.out.strip()


@pytest.mark.parametrize(("target", "project"), list(EXPECTED))
def test_install_lands_where_the_agent_reads(tmp_path: Path, target: str, project: bool) -> None:
    home, proj, printed = install(tmp_path, "--target", target, *(["--project"] if project else []))
    expected = (proj if project else home) / EXPECTED[(target, project)]
    assert Path(printed) == expected
    fields = frontmatter(expected.read_text())
    assert fields["name"] == "offload"
    assert len(fields["description"]) > 40


def test_show_prints_the_installed_text(tmp_path: Path) -> None:
    _, _, printed = install(tmp_path)
    assert offload("skill", "show").out == Path(printed).read_text()


def test_the_skill_covers_the_seed_workflow() -> None:
    text = offload("skill", "show").out
    for command in (
        "offload doctor",
        "offload models",
        "offload load",
        "offload ask -c",
        "offload unload",
        "--json",
        "paths",
    ):
        assert command in text, command
    assert "security-critical" in text


def test_an_edited_skill_is_not_overwritten_without_force(tmp_path: Path) -> None:
    printed = install(tmp_path)[2]
    Path(printed).write_text("my own notes")
    again = offload("skill", "install")
    assert again.code == 2
    assert "--force" in again.err
    assert Path(printed).read_text() == "my own notes"
    forced = offload("skill", "install", "--force")
    assert forced.code == 0, forced.err
    assert Path(printed).read_text().startswith("---\nname: offload\n")
