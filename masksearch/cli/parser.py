"""The ``masksearch`` argument parser: four commands, help texts from the settings table."""

from __future__ import annotations

import argparse
from typing import NoReturn

from masksearch.settings import RUN_FIELDS

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_PROBLEM_OVERRIDE = (
    "rebuild the run's problem from this name or pkg.module:function (for a run saved from "
    "Python with a problem masksearch cannot rebuild, or a module that moved)"
)


class _Formatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description; keeps indented lines (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        blocks = []
        for block in text.split("\n\n"):
            if block.startswith("  ") or "\n  " in block:
                blocks.append(textwrap.indent(block, indent))
            else:
                blocks.append(
                    textwrap.fill(
                        " ".join(block.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(blocks)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line (`masksearch: error: ...`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"masksearch: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``masksearch`` argument parser with its four commands."""
    formatter = _Formatter
    parser = _Parser(
        prog="masksearch",
        description="Prune neural networks by searching for weight masks with metaheuristics.",
        epilog="Run `masksearch COMMAND --help` for each command's options. Errors are one "
        "line (exit status 2); set MASKSEARCH_DEBUG=1 to see the traceback.\n\n"
        "quick start:\n  masksearch run --out runs/quickstart",
        formatter_class=formatter,
    )
    from masksearch import __version__

    parser.add_argument("--version", action="version", version=f"masksearch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    listing = commands.add_parser(
        "problems",
        formatter_class=formatter,
        help="list the catalogued problems and whether their data is available",
        description="List the catalogued pruning problems, their model and dataset, and "
        "whether the dataset is available on this machine.",
    )
    listing.add_argument("--data-root", metavar="DIR", help=RUN_FIELDS["data_root"][0])
    listing.add_argument("--json", action="store_true", help="print one JSON object per problem")

    run = commands.add_parser(
        "run",
        help="search for masks (writes a run directory)",
        description="Search for pruning masks and write a run directory (config.json, "
        "environment.json, checkpoint.pkl, log.jsonl, history.json, front.json, masks.npz, "
        "report.md with front.png and hypervolume.png).\n\n"
        "Settings come from, in increasing priority: the defaults, the run directory's "
        "config.json (with --resume), the TOML file CONFIG, and the options below. The TOML "
        "keys are the option names with '_' for '-' (problem, solver, budget, pop_size, ...), "
        "plus tables [solver_options], [encoding_options] and [init_options].\n\n"
        "Ctrl-C stops after the current generation's checkpoint and still writes the results; "
        "`--resume` continues to the same front an uninterrupted run reaches.",
        epilog="examples:\n"
        "  masksearch run --out runs/quickstart\n"
        "  masksearch run --problem digits_mlp --solver ga --budget 2000 --seed 1 --out runs/ga\n"
        "  masksearch run search.toml --time 600 --workers 2\n"
        "  masksearch run --resume runs/quickstart --budget 6000",
        formatter_class=formatter,
    )
    run.add_argument(
        "config", nargs="?", metavar="CONFIG", help="TOML file with run settings (optional)"
    )
    for name, (text, metavar) in RUN_FIELDS.items():
        if name in ("workers", "scheduler"):
            continue
        run.add_argument("--" + name.replace("_", "-"), dest=name, metavar=metavar, help=text)
    parallel = run.add_mutually_exclusive_group()
    for name in ("workers", "scheduler"):
        text, metavar = RUN_FIELDS[name]
        parallel.add_argument("--" + name, dest=name, metavar=metavar, help=text)
    run.add_argument(
        "--solver-option",
        dest="solver_options",
        action="append",
        metavar="KEY=VALUE",
        help="extra solver option (repeatable), e.g. --solver-option n_offsprings=50",
    )
    run.add_argument(
        "--encoding-option",
        dest="encoding_options",
        action="append",
        metavar="KEY=VALUE",
        help="extra encoding option (repeatable), e.g. --encoding-option density=0.05",
    )
    run.add_argument(
        "--init-option",
        dest="init_options",
        action="append",
        metavar="KEY=VALUE",
        help="option of the --init methods that take it (repeatable), e.g. --init-option "
        "lr_schedule=cosine --init-option lr=0.02 for supermask(-path)",
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="DIR",
        help="continue the run in DIR (or in --out) from its last checkpoint, with the settings "
        "of DIR/config.json; options that change which search it is (problem, solver, "
        "encoding, objectives, seed, ...) are refused, budget/time/device/workers may change",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out directory that already holds a run (deletes its results)",
    )
    output = run.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="print nothing but errors")
    output.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line per generation and a final summary line on stdout "
        "(no progress bar)",
    )

    report = commands.add_parser(
        "report",
        formatter_class=formatter,
        help="regenerate report.md and the plots of a run directory",
        description="Rebuild report.md, report.json, front.png and hypervolume.png of a run "
        "directory from its saved files (the problem is rebuilt from config.json to score the "
        "magnitude baseline on the same data; a run saved from Python works too).",
    )
    report.add_argument("dir", metavar="DIR", help="run directory written by `masksearch run`")
    report.add_argument("--problem", metavar="REF", help=_PROBLEM_OVERRIDE)
    report.add_argument("--data-root", metavar="DIR", help="override the run's data root")
    report.add_argument("--device", metavar="DEV", help="override the run's device")

    export = commands.add_parser(
        "export",
        help="export a front member as a torch.nn.utils.prune model",
        description="Pick a mask from a run's front, optionally fine-tune the kept weights, and "
        "save the model's state_dict in torch.nn.utils.prune form (<name>_orig + <name>_mask). "
        "Load it with: model = <same architecture>; Mask.ones(model).to_prune(model); "
        "model.load_state_dict(torch.load(PATH)). Prints accuracy and density on the test split.",
        formatter_class=formatter,
        epilog="example:\n"
        "  masksearch export runs/quickstart --max-density 0.05 --finetune 2 --out model.pt\n"
        "  masksearch export runs/long --max-density 0.02 --pick held-out --out model.pt\n"
        "    (runs/long searched with --fitness-split train, or --val-samples N)\n"
        "  masksearch export runs/resnet8 --max-density 0.3 --structured --finetune 1 "
        "--out small.pt2",
    )
    export.add_argument("dir", metavar="DIR", help="run directory written by `masksearch run`")
    choice = export.add_mutually_exclusive_group(required=True)
    choice.add_argument(
        "--max-density",
        metavar="D",
        help="take the most accurate (lowest validation error) member with density <= D",
    )
    choice.add_argument("--member", metavar="I", help="take front member I (`index` in front.json)")
    export.add_argument(
        "--pick",
        metavar="HOW",
        default="fitness",
        help="how --max-density chooses: fitness (default: the member most accurate on the "
        "images the search judged masks on) or held-out (the front member or warm-start seed "
        "with the lowest loss on validation images the search never judged masks on, a seed "
        "kept unless a member beats it by --margin standard errors; needs a run with "
        "--val-samples below the split's size or --fitness-split train), or held-out-error "
        "(the same on the 0/1 error: for seeds learned on another loss than the search's, "
        "e.g. --init-option label_smoothing=0.1, whose higher cross-entropy says nothing of "
        "their accuracy)",
    )
    export.add_argument(
        "--margin",
        metavar="SE",
        help="with --pick held-out(-error): standard errors by which a front member must beat the "
        "best seed on the held-out images (default 2; 0 takes the lowest held-out loss)",
    )
    export.add_argument("--out", required=True, metavar="PATH", help="file to write (model.pt)")
    export.add_argument(
        "--structured",
        action="store_true",
        help="remove the pruned channels physically (a run with --encoding groups): write a "
        "smaller model as a torch.export program (model.pt2) that loads without masksearch: "
        "torch.export.load(PATH).module()",
    )
    export.add_argument(
        "--finetune",
        metavar="EPOCHS",
        default="0",
        help="fine-tune the kept weights for EPOCHS epochs on the train split (default 0)",
    )
    export.add_argument(
        "--lr", metavar="LR", default="0.01", help="fine-tuning learning rate (default 0.01)"
    )
    export.add_argument(
        "--distill",
        action="store_true",
        help="fine-tune by knowledge distillation from the run's dense model (temperature 4, "
        "0.9 of the loss on its softened outputs, 0.1 on the labels) instead of the labels alone",
    )
    export.add_argument("--seed", metavar="S", default="0", help="fine-tuning seed (default 0)")
    export.add_argument("--problem", metavar="REF", help=_PROBLEM_OVERRIDE)
    export.add_argument("--data-root", metavar="DIR", help="override the run's data root")
    export.add_argument("--device", metavar="DEV", help="override the run's device")
    export.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return parser
