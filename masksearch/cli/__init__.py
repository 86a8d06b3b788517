"""The ``masksearch`` command: list problems, run a search, report on it, export a pruned model.

.. code-block:: text

    masksearch problems [--data-root DIR] [--json]
    masksearch run [CONFIG.toml] [--problem NAME] [--solver NAME] [--encoding NAME]
                   [--budget EVALS] [--time SECONDS] [--seed S] [--out DIR] [--device DEV]
                   [--workers N | --scheduler ADDRESS] [--pop-size N] [--objectives a,b]
                   [--densities d1,d2] [--val-samples N] [--data-root DIR] [--evaluator KIND]
                   [--local-search none|gradient-swaps]
                   [--solver-option KEY=VALUE ...] [--encoding-option KEY=VALUE ...]
                   [--init-option KEY=VALUE ...]
                   [--resume [DIR]] [--overwrite] [--quiet | --json]
    masksearch report DIR [--problem REF] [--data-root DIR] [--device DEV]
    masksearch export DIR (--max-density D | --member I) [--finetune EPOCHS [--distill]] [--problem REF] --out model.pt

Every user error (a bad option or config value, an unknown problem, a missing dataset, a damaged
or foreign checkpoint) ends with one line ``masksearch: error: ...`` on stderr and exit code 2;
set ``MASKSEARCH_DEBUG=1`` to see the traceback instead. An interrupted run (Ctrl-C) writes its
results and exits with 130.

The package is split by job: :mod:`~masksearch.cli.parser` (options and help),
:mod:`~masksearch.cli.config` (merging settings), :mod:`~masksearch.cli.commands`; building the
run itself is :func:`masksearch.builder.build_run`'s job.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from masksearch.builder import (
    build_local_search,
    build_problem,
    build_solver,
    local_search_choice,
    parallel_evaluator,
    resolved_settings,
)
from masksearch.cli.commands import cmd_export, cmd_problems, cmd_report, cmd_run
from masksearch.cli.config import resolve_run_config
from masksearch.cli.parser import EXIT_INTERRUPTED, EXIT_USAGE, build_parser
from masksearch.settings import UserError, load_toml

# the name these had when they lived in the CLI
resolved_config = resolved_settings

__all__ = [
    "UserError",
    "build_local_search",
    "build_parser",
    "build_problem",
    "build_solver",
    "load_toml",
    "local_search_choice",
    "main",
    "one_line",
    "parallel_evaluator",
    "resolve_run_config",
    "run_main",
]


def _user_error_types() -> tuple[type[BaseException], ...]:
    from masksearch.rundir import RunLockedError
    from masksearch.search import CheckpointError

    return (UserError, ValueError, TypeError, OSError, CheckpointError, RunLockedError)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (multi-line messages are joined)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if isinstance(error, KeyError) or not text:
        text = f"{type(error).__name__}: {text or repr(error)}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``masksearch`` command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {
        "problems": cmd_problems,
        "run": cmd_run,
        "report": cmd_report,
        "export": cmd_export,
    }
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("\nmasksearch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if os.environ.get("MASKSEARCH_DEBUG") or not isinstance(error, _user_error_types()):
            raise
        message = one_line(error)
        if type(error).__name__ == "DatasetNotFoundError":
            message += " On the command line: --data-root DIR or MASKSEARCH_DATA=DIR."
        print(f"masksearch: error: {message}", file=sys.stderr)
        return EXIT_USAGE


def run_main() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    run_main()
