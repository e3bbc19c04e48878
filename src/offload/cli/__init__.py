"""The ``offload`` command. Importing this package registers every subcommand on ``cli``."""

from __future__ import annotations

from offload.cli import ask, config_cmd, doctor, models, stats, tasks  # noqa: F401  (registers commands)
from offload.cli._app import cli


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="offload")


__all__ = ["cli", "main"]
