"""``offload skill show|install``: the agent skill that says when and how to hand work to offload.

The text ships in the package (``offload/skills/offload/SKILL.md``). ``install`` writes it
where each agent reads skills, user-wide or (``--project``) in the current directory:

* claude — ``~/.claude/skills/offload/`` or ``./.claude/skills/offload/``
* openclaw — ``~/.openclaw/skills/offload/`` or the workspace's ``./skills/offload/``
* codex — ``~/.agents/skills/offload/`` or ``./.agents/skills/offload/``

An existing, different ``SKILL.md`` is never overwritten without ``--force``.
"""

from __future__ import annotations

from pathlib import Path

import click

from offload.cli._app import cli, note
from offload.errors import InputError

NAME = "offload"
USER_DIRS = {"claude": ".claude/skills", "openclaw": ".openclaw/skills", "codex": ".agents/skills"}
PROJECT_DIRS = {"claude": ".claude/skills", "openclaw": "skills", "codex": ".agents/skills"}


def skill_text() -> str:
    """The skill file's text."""
    from importlib import resources

    return resources.files("offload").joinpath("skills", NAME, "SKILL.md").read_text(encoding="utf-8")


def skill_path(target: str, *, project: bool, home: Path | None = None, cwd: Path | None = None) -> Path:
    """Where ``target`` reads the skill: user-wide under ``home``, or in the project at ``cwd``."""
    base = (
        (cwd or Path.cwd()) / PROJECT_DIRS[target] if project else (home or Path.home()) / USER_DIRS[target]
    )
    return base / NAME / "SKILL.md"


@cli.group("skill")
def skill_group() -> None:
    """The offload skill for coding agents (Claude Code, OpenClaw, Codex)."""


@skill_group.command("show")
def show_cmd() -> None:
    """Print the skill (SKILL.md) on stdout."""
    click.echo(skill_text(), nl=False)


@skill_group.command("install")
@click.option(
    "--target", type=click.Choice(sorted(USER_DIRS)), default="claude", show_default=True, help="Which agent."
)
@click.option("--project", is_flag=True, help="Install into the current project instead of user-wide.")
@click.option("--force", is_flag=True, help="Replace an existing SKILL.md that differs.")
def install_cmd(target: str, project: bool, force: bool) -> None:
    """Write SKILL.md where the agent reads skills, and print its path."""
    path = skill_path(target, project=project)
    text = skill_text()
    if path.exists():
        try:
            current = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the existing {path}: {exc}") from exc
        if current == text:
            note(f"offload skill: already installed for {target}")
            click.echo(str(path))
            return
        if not force:
            raise InputError(
                f"{path} exists and differs from offload's skill", remedy="add --force to replace it"
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    note(f"offload skill: installed for {target} ({'project' if project else 'user-wide'})")
    click.echo(str(path))
