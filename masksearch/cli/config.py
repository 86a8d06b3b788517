"""Where ``masksearch run`` takes its settings from, in increasing priority: the defaults, the run
directory's ``config.json`` (``--resume``), a TOML file, the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from masksearch.builder import complete_settings, default_out
from masksearch.settings import (
    CONFIG_KEYS,
    FINGERPRINT_KEYS,
    RESUME_FIXED_KEYS,
    UserError,
    load_toml,
    validate_values,
)

__all__ = ["resolve_run_config"]


def resolve_run_config(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    """Merge defaults, config.json (resuming), the TOML file and the flags; check names.

    Returns the configuration and whether this run resumes.
    """
    from masksearch.catalogue import default_problem_name

    flags = validate_values({key: getattr(args, key, None) for key in CONFIG_KEYS}, "command line")
    from_file = validate_values(load_toml(args.config), args.config) if args.config else {}
    stored: dict[str, Any] = {}
    resume = args.resume is not None
    if resume:
        directory = args.resume if isinstance(args.resume, str) else None
        out = flags.get("out") or from_file.get("out")
        if directory is None:
            directory = out
        if directory is None:
            raise UserError("--resume needs the run directory: --resume DIR (or --out DIR)")
        if out is not None and Path(out) != Path(directory):
            raise UserError(f"--resume {directory} and --out {out} name different directories")
        from masksearch.rundir import RunDir

        run = RunDir(directory)
        if not run.config.exists():
            raise UserError(
                f"nothing to resume in {directory}: it has no config.json "
                "(start the run with `masksearch run --out DIR`)"
            )
        stored = validate_values(run.read_json("config"), f"{run.config}")
        stored["out"] = str(directory)

    config = {**stored, **from_file, **flags}
    if resume:
        # run directories older than a setting do not store it: nothing to compare then
        changed = [
            k
            for k in RESUME_FIXED_KEYS
            if k in config and config[k] != stored.get(k) and (k in FINGERPRINT_KEYS or k in stored)
        ]
        if changed:
            details = ", ".join(f"{k} {stored.get(k)!r} -> {config[k]!r}" for k in changed)
            raise UserError(
                f"cannot resume {stored['out']} with different settings ({details}); drop those "
                "options to continue it, or start a new run with another --out"
            )

    if "problem" not in config:
        config["problem"] = default_problem_name(config.get("data_root"))
        if config["problem"] != "lenet300_fashion" and not (args.quiet or args.json):
            print(
                "masksearch: Fashion-MNIST not found, so searching the embedded digits problem; "
                "for the default LeNet-300-100 problem install it (Debian/Ubuntu: apt-get "
                "install dataset-fashion-mnist) or pass --data-root DIR holding torchvision's "
                "FashionMNIST/raw/",
                file=sys.stderr,
            )
    config = complete_settings(config)
    config.setdefault("out", default_out(config))
    return config, resume
