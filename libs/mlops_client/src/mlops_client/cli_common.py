"""What every `mlops` command group shares: consoles, the root options, JSON/table output,
key=value parsing, progress bars, and turning service errors into a clean exit."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from mlops_client.errors import MlopsError

C = TypeVar("C")

console = Console()
err = Console(stderr=True)
# the root command's options (`mlops --url ... --api-key ... <group> ...`), set by its callback
state: dict[str, Any] = {}

_display_type_rich = typer.core.TyperOption.display_type_rich


def _flag_shows_no_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    # typer's rich help shows a flag as `--json <bool>`, which reads as if it took a value:
    # a flag (`--json`, `--wait/--no-wait`) shows no type, as in click's plain help
    return None if self.is_flag else _display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_shows_no_type  # type: ignore[method-assign]

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


@contextmanager
def client_for(factory: Callable[..., Any], url_option: str) -> Iterator[Any]:
    """A client configured by the root options; a service error prints its code, message and
    any row errors, and exits 1."""
    try:
        with factory(state.get(url_option), api_key=state.get("api_key")) as client:
            yield client
    except MlopsError as exc:
        err.print(f"[red]error[/red] {exc.code}: {exc.message}")
        for problem in exc.details.get("errors", [])[:20] if isinstance(exc.details, dict) else []:
            err.print(f"  {problem}")
        raise typer.Exit(1) from None


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error[/red] {message}")
    return typer.Exit(code)


def emit(data: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json or table is None:
        plain = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        if isinstance(plain, list):
            plain = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in plain]
        sys.stdout.write(json.dumps(plain, indent=2, default=str) + "\n")
    else:
        console.print(table)


def pairs(items: list[str], what: str, number: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            err.print(f"[red]error[/red] {what} {item!r} must look like key=value")
            raise typer.Exit(2)
        try:
            out[key] = float(value) if number else json.loads(value)
        except ValueError:
            if number:
                err.print(f"[red]error[/red] {what} {key!r} needs a number, got {value!r}")
                raise typer.Exit(2) from None
            out[key] = value
    return out


@contextmanager
def bytes_bar(label: str) -> Iterator[Any]:
    """A transfer progress bar on stderr; yields the (done, total) callback the clients take."""
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)
