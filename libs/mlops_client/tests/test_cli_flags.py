"""The `mlops` CLI's boolean options are flags and its help says so; `mlops --version`."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import typer
from mlops_client.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under `group` (typer ships its own click, so this goes by duck type)."""
    yield path, group
    if hasattr(group, "list_commands"):
        ctx = group.context_class(group)
        for name in group.list_commands(ctx):
            yield from commands(group.get_command(ctx, name), (*path, name))


def test_every_boolean_option_is_a_flag_and_its_help_shows_no_value() -> None:
    everything = list(commands(typer.main.get_command(app)))
    assert len(everything) > 40
    for path, command in everything:
        for param in command.params:
            if param.param_type_name == "option" and param.bare_type() == "bool":
                assert param.is_flag, f"mlops {' '.join(path)} {param.opts}: a boolean that takes a value"
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, f"mlops {' '.join(path)} --help:\n{result.output}"


def test_json_is_a_bare_flag_on_every_command_that_has_it() -> None:
    with_json = 0
    for path, command in commands(typer.main.get_command(app)):
        json_opt = next((p for p in command.params if "--json" in getattr(p, "opts", [])), None)
        if json_opt is not None:
            with_json += 1
            ctx = command.make_context("mlops", ["--json"], resilient_parsing=True)
            assert ctx.params[json_opt.name] is True, path
    assert with_json > 30


def test_version_prints_the_client_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"mlops {version('mlops-client')}"
