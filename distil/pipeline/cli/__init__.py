"""The ``distil`` command line: one module per command, all registered on :data:`app`.

:func:`main` is the one place where errors meet the user: a
:class:`~distil.errors.DistilError` or an OS error on a user's path prints one
``error: ...`` line and exits 1, a usage error prints the usage line and exits
2 (as click does), and anything else is a bug in distil, reported as an
internal error. ``distil --debug`` or ``DISTIL_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Optional

import typer

from ...errors import DistilError
from .app import DebugState, app, click_exceptions, debug_from_env, print_error


def os_error_message(err: OSError) -> str:
    """The message of an OS error on a user's path, naming the path: ``no such file or directory: x.txt``."""
    reason = (err.strerror or type(err).__name__).lower()
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return f"{reason}: {' -> '.join(paths)}" if paths else f"{reason}: {err}"


def run_cli(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``distil`` command line on ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    Click runs in non-standalone mode so that every error, click's own
    included, is printed here in the one ``error: <message>`` format.
    """
    from . import commands  # noqa: F401  (registers the commands on the app)

    args = list(sys.argv[1:] if argv is None else argv)
    DebugState.enabled = debug_from_env()  # --debug sets it again while the options are parsed
    try:
        result = app(args=args, prog_name="distil", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as err:
        err.show()
        return err.exit_code
    except click_exceptions.UsageError as err:
        if err.ctx is not None:
            typer.echo(err.ctx.get_usage(), err=True)
            typer.echo(f"Try '{err.ctx.command_path} --help' for help.", err=True)
        print_error(err.format_message())
        return err.exit_code
    except click_exceptions.ClickException as err:
        print_error(err.format_message())
        return err.exit_code
    except typer.Abort:
        print_error("aborted")
        return 1
    except DistilError as err:
        _traceback_if_debug()
        print_error(str(err))
        return 1
    except BrokenPipeError:
        # The reader went away (``distil run ... | head``): nothing left to tell it.
        sys.stderr.close()
        return 1
    except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError) as err:
        _traceback_if_debug()
        print_error(os_error_message(err))
        return 1
    except Exception as err:  # a bug in distil (or a library): say so, and keep the traceback one flag away
        if DebugState.enabled:
            raise
        print_error(
            f"internal error: {type(err).__name__}: {err} (run with --debug or DISTIL_DEBUG=1 for the traceback)"
        )
        return 1
    return result if isinstance(result, int) else 0


def _traceback_if_debug() -> None:
    """Print the traceback of the error being handled when ``--debug`` or ``DISTIL_DEBUG=1`` asked for it."""
    if DebugState.enabled:
        traceback.print_exc()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of the ``distil`` console script and ``python -m distil``: exits with the command's status."""
    sys.exit(run_cli(argv))


__all__ = ["app", "main", "run_cli"]
