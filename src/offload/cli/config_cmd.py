"""``offload config check|show|init``: validate, display (secrets redacted) and start a config."""

from __future__ import annotations

from pathlib import Path

import click

from offload.cli._app import cli, current_config, json_option, note, print_json
from offload.starter import LAYOUTS


@cli.group("config")
def config_group() -> None:
    """Inspect or create the config file."""


@config_group.command("check")
def check_cmd() -> None:
    """Validate the config file; every problem is listed with its key path."""
    config = current_config()
    where = str(config.source) if config.source else "no config file (built-in defaults)"
    chain = " → ".join(str(r) for r in config.chain())
    click.echo(f"ok: {where}")
    click.echo(f"default chain: {chain}")
    for warning in config.warnings():
        note(f"warning: {warning}")
    unsupported = [p.id for p in config.providers.values() if not p.supported]
    if unsupported:
        note(
            "note: offload does not speak the api of provider(s) "
            + ", ".join(unsupported)
            + "; they are skipped"
        )
    hosted = [str(r) for r in config.chain() if not config.is_local(r)]
    if config.settings.local_only and hosted:
        note("note: local-only is on; these hosted candidates will be refused: " + ", ".join(hosted))


@config_group.command("show")
@json_option
def show_cmd(as_json: bool) -> None:
    """Print the effective merged config (built-ins + file), secrets redacted."""
    shown = current_config().show()
    if as_json:
        print_json(shown)
        return
    import json

    click.echo(json.dumps(shown, indent=2, ensure_ascii=False))


@config_group.command("init")
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default="local-first",
    show_default=True,
    help="Which starter layout to write.",
)
@click.option(
    "--path", "target", type=click.Path(dir_okay=False), help="Where to write (default: config location)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print instead of writing a file.")
def init_cmd(layout: str, target: str | None, force: bool, to_stdout: bool) -> None:
    """Write a commented starter config (local-first, hosted-first or local-only)."""
    from offload.settings import config_path
    from offload.starter import starter

    text = starter(layout)
    if to_stdout:
        click.echo(text, nl=False)
        return
    path = Path(target).expanduser() if target else config_path()
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; use --force to overwrite or --path to write elsewhere")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path} ({layout}); check it with: offload config check")
