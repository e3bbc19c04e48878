"""``offload ask``: one chat with a local model, from an argument, ``@file`` or stdin."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from offload.cli._app import (
    FiniteFloatRange,
    cli,
    current_config,
    json_option,
    note,
    print_json,
    run,
    server_options,
    stderr_is_tty,
)
from offload.closing import closing
from offload.constants import REASONING_LEVELS
from offload.errors import BadResponse, InputError

if TYPE_CHECKING:
    from offload.errors import ProviderError
    from offload.routing.router import Candidate, Routed
    from offload.routing.selection import Choice, Prefer
    from offload.types import ChatResult, StreamEvent


def read_prompt(text: str | None) -> str:
    """The prompt from TEXT, ``@path`` or stdin (``-`` or no argument with piped input)."""
    if text is not None and text.startswith("@") and len(text) > 1:
        path = Path(text[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read prompt file {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"prompt file {path} is not UTF-8 text") from exc
    if text is None or text == "-":
        if sys.stdin.isatty() and text is None:
            raise click.UsageError("give the prompt as TEXT, @FILE, or on stdin")
        data = sys.stdin.buffer.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"stdin is not UTF-8 text (invalid byte at offset {exc.start})",
                remedy="convert it first, e.g. iconv -f latin1 -t utf-8, or pass a UTF-8 @FILE",
            ) from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"the TEXT argument is not valid UTF-8 (at character {exc.start})",
            remedy="pass the text in a UTF-8 file as @FILE or on stdin",
        ) from exc
    return text


def image_url(path: str) -> str:
    """A ``data:`` URL for an image file."""
    import base64
    import mimetypes

    p = Path(path).expanduser()
    mime = mimetypes.guess_type(p.name)[0] or "image/png"
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image {p}: {exc.strerror or exc}") from exc
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def on_retry(exc: ProviderError, attempt: int, wait: float) -> None:
    """Say on stderr that a transient failure is being retried."""
    note(f"offload: {exc.short()} — retry {attempt} in {wait:.1f}s")


class Printer:
    """Renders stream events: answer on stdout, progress and reasoning on stderr."""

    def __init__(self, *, live: bool, show_reasoning: bool) -> None:
        self.live = live
        self.show_reasoning = show_reasoning
        self.tty = stderr_is_tty()
        self.stage: str | None = None
        self.wrote = False
        self.closed = False
        """True once stdout's reader has gone away."""

    def __call__(self, event: StreamEvent) -> None:
        from offload.types import Progress, ReasoningDelta, TextDelta

        if isinstance(event, Progress):
            self.progress(event)
        elif isinstance(event, ReasoningDelta) and self.show_reasoning and self.live:
            click.secho(event.text, err=True, nl=False, dim=True)
        elif isinstance(event, TextDelta) and self.live and not self.closed:
            try:
                click.echo(event.text, nl=False)
                sys.stdout.flush()
            except BrokenPipeError:  # the reader went away (``| head -1``): stop printing
                self.closed = True
            self.wrote = True

    def progress(self, event: Any) -> None:
        label = "loading model" if event.stage == "model_load" else "processing prompt"
        if self.tty:
            end = "\n" if event.done else ""
            click.echo(f"\r{label} {event.fraction * 100:3.0f}%", err=True, nl=False)
            if end:
                click.echo("", err=True)
        elif event.done or self.stage != event.stage:
            note(f"{label} {'done' if event.done else '…'}")
        self.stage = event.stage

    def finish(self, result: ChatResult) -> None:
        """Print the final answer (or end the live line)."""
        if self.show_reasoning and result.reasoning and not self.live:
            click.secho(result.reasoning, err=True, dim=True)
        if self.live:
            if self.wrote:
                click.echo("")
        else:
            click.echo(result.content)


def explain(candidate: Candidate, choice: Choice) -> None:
    """``--verbose``: why this model was chosen."""
    note(f"model: {candidate.provider.id}/{choice.model.key}")
    for reason in choice.reasons:
        note(f"  - {reason}")


def routed_json(routed: Routed, conversation: str | None) -> dict[str, Any]:
    """The ``--json`` object: the result plus who answered and how the chain went."""
    return {
        **routed.result.to_dict(),
        "candidate": routed.candidate.name,
        "local": routed.candidate.local,
        "failed_over": routed.failed_over,
        "attempts": [
            {"candidate": a.candidate, "outcome": a.outcome, "seconds": round(a.seconds, 3), "error": a.error}
            for a in routed.attempts
        ],
        "conversation": conversation,
    }


@cli.command("ask")
@click.argument("text", required=False)
@click.option(
    "-m", "--model", metavar="REF", help="Model, alias or provider/model (default: the config's chain)."
)
@click.option("--provider", metavar="ID", help="Use only this provider (e.g. embedded, lmstudio).")
@click.option(
    "-s", "--system", metavar="PROMPT", help="System prompt (sent on a conversation's first turn only)."
)
@click.option("--temperature", type=FiniteFloatRange(0, 2), help="Sampling temperature.")
@click.option("--top-p", type=FiniteFloatRange(0, 1), help="Nucleus sampling.")
@click.option("--max-output-tokens", type=click.IntRange(min=1), help="Cap on answer length.")
@click.option("--reasoning", type=click.Choice(REASONING_LEVELS), help="Reasoning effort (model-dependent).")
@click.option(
    "--context-length", type=click.IntRange(min=1), help="Context to load with when this call loads."
)
@click.option("--previous-response-id", metavar="ID", help="Continue a stored thread from this response.")
@click.option(
    "-c", "--conversation", metavar="NAME", help="Stateful named conversation (kept in the data dir)."
)
@click.option("--no-store", is_flag=True, help="Do not store the response on the server (no response id).")
@click.option(
    "--unload-after/--keep", default=False, help="Unload the model afterwards if this call loaded it."
)
@click.option("--image", "images", multiple=True, metavar="PATH", help="Attach an image (vision models).")
@click.option("--prefer", type=click.Choice(["fast", "quality"]), default="fast", help="Model choice bias.")
@click.option(
    "--local-only", is_flag=True, default=None, help="Never contact a hosted provider for this call."
)
@click.option("--no-fallback", is_flag=True, help="Try only the first model of the chain.")
@click.option("--stream", is_flag=True, help="Print the answer as it arrives; progress on stderr.")
@click.option("--show-reasoning", is_flag=True, help="Show the model's reasoning on stderr.")
@click.option(
    "--log", "log_path", type=click.Path(dir_okay=False), help="Append JSON lines of requests/responses."
)
@click.option("-v", "--verbose", is_flag=True, help="Explain the model choice.")
@server_options
@json_option
def ask_cmd(
    text: str | None,
    model: str | None,
    provider: str | None,
    system: str | None,
    temperature: float | None,
    top_p: float | None,
    max_output_tokens: int | None,
    reasoning: str | None,
    context_length: int | None,
    previous_response_id: str | None,
    conversation: str | None,
    no_store: bool,
    unload_after: bool,
    images: tuple[str, ...],
    prefer: str,
    local_only: bool | None,
    no_fallback: bool,
    stream: bool,
    show_reasoning: bool,
    log_path: str | None,
    verbose: bool,
    base_url: str | None,
    api_token: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Ask a local model. TEXT may be @FILE; with no TEXT the prompt is read from stdin."""
    from offload.offloader import Offloader

    prompt = read_prompt(text)
    if conversation and previous_response_id:
        raise click.UsageError("use either --conversation or --previous-response-id, not both")
    if provider:
        model = f"{provider}/{model or 'auto'}"
    printer = Printer(live=stream and not as_json, show_reasoning=show_reasoning)
    options: dict[str, Any] = {
        "model": model,
        "system": system,
        "temperature": temperature,
        "top_p": top_p,
        "max_output_tokens": max_output_tokens,
        "reasoning": reasoning,
        "context_length": context_length,
        "previous_response_id": previous_response_id,
        "store": not no_store,
        "images": tuple(image_url(p) for p in images),
        "conversation": conversation,
        "local_only": local_only,
        "fallbacks": not (no_fallback or provider),
        "unload_after": unload_after,
    }
    config = current_config()

    async def go() -> Routed:
        off = Offloader(
            config,
            base_url=base_url,
            api_token=api_token,
            timeout=timeout,
            log=log_path,
            notify=note,
            prefer=cast("Prefer", prefer),
            on_choice=explain if verbose else None,
            on_retry=on_retry,
        )
        async with off:
            events = off.stream(prompt, **options) if stream else None
            if events is None:
                return await off.ask(prompt, **options)
            async with closing(events):  # closed here, in this task, even after a break
                async for event in events:
                    printer(event)
                    if printer.closed:
                        break
            if printer.closed:
                raise BrokenPipeError("stdout was closed")
            if events.routed is None:
                raise BadResponse("the stream ended without an answer", remedy="retry without --stream")
            return events.routed

    routed = run(go())
    if as_json:
        print_json(routed_json(routed, conversation))
    else:
        printer.finish(routed.result)
