"""The Typer application every command module registers on, and the command class for config overrides."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from typing import Any, Optional

import typer
from typer.core import TyperCommand

try:  # typer >= 0.22 vendors its own click; the exceptions must be that copy's
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer runs on the click package
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from ...about import __version__

# Extra pieces of a command's usage line: click only knows the declared
# parameters, but these commands also take positional values and
# ``--section.key value`` overrides through their extra arguments.
EXTRA_USAGE: dict[str, list[str]] = {
    "run": ["[TEXTS]..."],
    "compare": ["[NAME=]CONFIG..."],
}
OVERRIDES_USAGE = "[--section.key VALUE]..."


def debug_from_env() -> bool:
    """Whether ``DISTIL_DEBUG`` asks for tracebacks (any value but empty, 0, false or no)."""
    return os.environ.get("DISTIL_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


class DebugState:
    """Whether the user asked for tracebacks (``distil --debug`` or ``DISTIL_DEBUG=1``), for this run."""

    enabled: bool = debug_from_env()


def print_error(message: str) -> None:
    """Print ``error: <message>`` on stderr: the one format of every user error, from every command."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)


def unknown_option_error(command: Any, ctx: Any, option: str) -> Exception:
    """A click usage error for ``option`` naming the closest real option, or else listing them all."""
    known = sorted({opt for param in command.get_params(ctx) for opt in [*param.opts, *param.secondary_opts]
                    if opt.startswith("--")})
    name = option.split("=", 1)[0]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {close[0]}?"
    else:
        hint = f"{ctx.command_path} takes {', '.join(known)}"
    hint += " (config overrides have a dot: --section.key VALUE)"
    return click_exceptions.NoSuchOption(name, message=f"no such option: {name}; {hint}", ctx=ctx)


class DistilCommand(TyperCommand):
    """A Typer command whose usage line names arguments in capitals (``CONFIG``), as click does.

    Typer writes a required argument as ``{config}``, which reads like a
    placeholder for a literal set of choices.
    """

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS]``, then each argument as ``NAME``, ``[NAME]`` or ``NAME...``."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                pieces.extend(param.get_usage_pieces(ctx))
                continue
            name = param.metavar or (param.name or "").upper()
            name = name if param.required else f"[{name}]"
            pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces


class OverridesCommand(DistilCommand):
    """A command that takes spaCy-style ``--section.key value`` overrides among its extra arguments.

    Such a command must let click pass unknown options through
    (``ignore_unknown_options``), so a misspelt option of its own
    (``--ouput``) would reach the command as if it were an argument. Here any
    unknown option without a dot, before a ``--`` separator, is a usage error
    naming the closest real option, as click gives for every other command.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Reject unknown non-dotted options, then parse as click does."""
        known = {opt for param in self.get_params(ctx) for opt in [*param.opts, *param.secondary_opts]}
        for arg in args:
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if name in known:
                continue
            if (arg.startswith("--") and len(arg) > 2 and "." not in name) or (
                len(arg) == 2 and arg[0] == "-" and arg[1].isalpha()
            ):
                raise unknown_option_error(self, ctx, arg)
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """The declared parameters, then the command's extra positional values and the overrides."""
        return [*super().collect_usage_pieces(ctx), *EXTRA_USAGE.get(self.name or "", []), OVERRIDES_USAGE]


class DistilTyper(typer.Typer):
    """A Typer app whose commands are :class:`DistilCommand`, or :class:`OverridesCommand` with ``ignore_unknown_options``."""

    def command(self, name: Optional[str] = None, *, cls: Optional[type[TyperCommand]] = None,
                context_settings: Optional[dict[Any, Any]] = None, **kwargs: Any) -> Callable[[Any], Any]:
        """Register a command as :meth:`typer.Typer.command` does, choosing the override-aware class."""
        if cls in (None, TyperCommand):
            overrides = (context_settings or {}).get("ignore_unknown_options")
            cls = OverridesCommand if overrides else DistilCommand
        return super().command(name, cls=cls, context_settings=context_settings, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the app; commands of sub-apps (``distil review ...``) get :class:`DistilCommand` too."""
        groups = list(self.registered_groups)
        while groups:
            sub = groups.pop().typer_instance
            if sub is None:
                continue
            for info in sub.registered_commands:
                if info.cls in (None, TyperCommand):  # typer's default: not chosen by the module
                    info.cls = DistilCommand
            groups.extend(sub.registered_groups)
        return super().__call__(*args, **kwargs)


app = DistilTyper(
    name="distil",
    help=(
        "Config-declared NLP pipelines with swappable LLM, encoder and rule components.\n\n"
        "An error is one 'error: ...' line on stderr (exit 2 for a usage error, else 1); "
        "--debug or DISTIL_DEBUG=1 adds the traceback."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich panels print a "<bool>" type on every flag.
    rich_markup_mode=None,
)

# Commands that take a CONFIG accept spaCy-style dotted overrides after their
# own options (``--paths.model DIR``), so unknown options must reach them.
OVERRIDES_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def _print_version(value: bool) -> None:
    """Print distil's version and exit (the eager ``--version`` option)."""
    if value:
        typer.echo(f"distil {__version__}")
        raise typer.Exit()


@app.callback()
def distil_options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print distil's version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the Python traceback of an error (also DISTIL_DEBUG=1)."
    ),
) -> None:
    """The options of ``distil`` itself, before the command: ``--version`` and ``--debug``."""
    if debug:
        DebugState.enabled = True


__all__ = ["OVERRIDES_CONTEXT", "DebugState", "OverridesCommand", "app", "print_error"]
