"""``offload conversations``: list the named conversations, or forget one."""

from __future__ import annotations

import time

import click

from offload.cli._app import cli, json_option, note, print_json, table


@cli.command("conversations")
@click.option("--forget", metavar="NAME", help="Delete a conversation's state (the next turn starts fresh).")
@json_option
def conversations_cmd(forget: str | None, as_json: bool) -> None:
    """List named conversations (ask -c NAME) with their last response and model."""
    from offload.conversations import ConversationStore
    from offload.settings import data_dir

    store = ConversationStore(data_dir() / "conversations")
    if forget:
        existed = store.forget(forget)
        note(f"forgot {forget}" if existed else f"no conversation named {forget}")
        return
    states = store.list()
    if as_json:
        print_json(
            {
                "conversations": [
                    {
                        "name": s.name,
                        "turns": s.turns,
                        "model": s.ref,
                        "response_id": s.response_id,
                        "updated": s.updated,
                    }
                    for s in states
                ]
            }
        )
    elif not states:
        note('no conversations yet: start one with offload ask -c NAME "..."')
    else:
        rows = [
            [s.name, str(s.turns), s.ref or "-", time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated))]
            for s in states
        ]
        click.echo(table(["NAME", "TURNS", "MODEL", "UPDATED"], rows))
