"""The four commands: ``problems``, ``run``, ``report`` and ``export``."""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from masksearch.builder import build_problem, build_run, fingerprint
from masksearch.cli.config import resolve_run_config
from masksearch.cli.parser import EXIT_INTERRUPTED
from masksearch.front import density_slack
from masksearch.settings import (
    UserError,
    check_density_value,
    check_integer,
    check_number,
    validate_values,
)

__all__ = ["cmd_export", "cmd_problems", "cmd_report", "cmd_run"]


def cmd_problems(args: argparse.Namespace) -> int:
    from masksearch.catalogue import default_problem_name, list_problems

    default = default_problem_name(args.data_root)
    rows = []
    for info in list_problems():
        rows.append(
            {
                "name": info.name,
                "model": info.model,  # None for a package's problem: its function knows
                "dataset": info.dataset,
                "available": info.available(args.data_root),
                "default": info.name == default,
                "description": " ".join(info.description.split()),
            }
        )
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'problem':<{width}}  {'data':<9}  description")
    for row in rows:
        status = "available" if row["available"] else "missing"
        mark = " (default)" if row["default"] else ""
        print(f"{row['name']:<{width}}  {status:<9}  {row['description']}{mark}")
    missing = [r for r in rows if not r["available"]]
    if missing:
        print(
            "\nmissing data: set MASKSEARCH_DATA=DIR or pass --data-root DIR "
            "(Fashion-MNIST on Debian/Ubuntu: apt-get install dataset-fashion-mnist)"
        )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from masksearch.rundir import RunDir

    config, resume = resolve_run_config(args)
    run = RunDir(config["out"])
    run.check_writable()
    with run.lock():
        # temporary files of writes a kill interrupted; no one else writes here while we hold
        # the lock
        for leftover in run.path.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        return _run_locked(args, config, resume, run)


def _run_locked(args: argparse.Namespace, config: dict[str, Any], resume: bool, run: Any) -> int:
    from masksearch import progress as progress_module
    from masksearch._jit import search_kernels, uncached
    from masksearch.report import save_results, save_seeds, write_report
    from masksearch.rundir import RunDir
    from masksearch.search import search

    quiet, as_json = args.quiet, args.json

    def note(message: str) -> None:
        if not quiet and not as_json:
            print(f"masksearch: {message}", file=sys.stderr, flush=True)

    if not resume and run.holds_run() and not args.overwrite:
        raise UserError(
            f"{run.path} already holds a run; continue it with `masksearch run --resume "
            f"{run.path}`, start afresh with --overwrite, or choose another --out"
        )
    if resume and not run.checkpoint.exists() and run.front.exists():
        raise UserError(
            f"cannot resume {run.path}: its checkpoint ({run.checkpoint.name}) is gone, and "
            "resuming would restart from zero and replace its results. Restore the file, or "
            f"start afresh with `masksearch run --out {run.path} --overwrite`"
        )

    note(f"preparing problem {config['problem']}")
    built = build_run(config, note=note)
    problem, solver, local_search = built.problem, built.solver, built.local_search
    config = built.settings

    if not resume and run.holds_run():
        # only now that every setting has been checked: a typo must not cost the old results
        for name in RunDir.FILES:
            getattr(run, name).unlink(missing_ok=True)
    from masksearch.device import resolve_device

    run.record_start(config, device=str(resolve_device(problem.device)), resume=resume)
    initial = None
    if not (resume and run.checkpoint.exists()):
        if resume:
            note(f"{run.checkpoint} does not exist yet (no generation finished): starting afresh")
        note(f"warm start: {', '.join(config['init'])}")
        initial = built.warm_start()
        note(
            f"warm start: {len(initial)} masks in {initial.seconds:.1f} s"
            + (f" ({initial.epochs:g} epochs of training)" if initial.epochs else "")
        )
        save_seeds(run, problem, initial)

    densities = problem.densities
    slack = density_slack(problem.layout.n_total)
    budget, time_limit = config.get("budget"), config.get("time")
    display: Any = None
    if as_json:
        display = progress_module.JsonLines(densities=densities, slack=slack)
    elif not quiet:
        display = progress_module.ProgressBar(
            budget=budget, time_limit=time_limit, densities=densities, slack=slack
        )
    note(
        f"{'resuming' if resume else 'searching'} {problem.name}: {config['solver']} on "
        f"{problem.encoding.name} ({problem.n_genes} genes), "
        + (f"budget {budget} evaluations" if budget else "")
        + (", " if budget and time_limit else "")
        + (f"time limit {time_limit:g} s" if time_limit else "")
        + f", seed {config['seed']} -> {run.path}"
    )
    if uncached(search_kernels(problem.encoding.packable)):
        note(
            "compiling masksearch's Numba kernels for this CPU: the first search after "
            "installing spends about a minute on it in its first generation (cached for later "
            "runs)"
        )
    callbacks: list[Any] = [progress_module.LogFile(run.log, densities=densities, slack=slack)]
    if display is not None:
        callbacks.append(display)
    try:
        with progress_module.StopOnSignal() as stopper:
            callbacks.append(stopper)  # last: it stops the search after the checkpoint
            result = search(
                problem,
                solver,
                budget=budget,
                time_limit=time_limit,
                seed=config["seed"],
                callbacks=callbacks,
                checkpoint=run.checkpoint,
                resume=resume,
                fingerprint=fingerprint(config),
                local_search=local_search,
                initial=initial,
            )
    finally:
        if isinstance(display, progress_module.ProgressBar):
            display.close()

    note("writing results and report")
    save_results(run, result, problem)
    write_report(run, problem)
    report = run.read_json("report_json")
    interrupted = result.stopped == "interrupted"
    if as_json:
        print(
            json.dumps(
                {
                    "event": "done",
                    "out": str(run.path),
                    "n_evals": result.n_evals,
                    "wall_time": result.wall_time,
                    "stopped": result.stopped,
                    "front_size": len(result.front),
                    "at_targets": report["at_targets"],
                }
            ),
            flush=True,
        )
    elif not quiet:
        from masksearch.selection import held_out_pick_for

        pick = held_out_pick_for(config) if problem.held_out_data is not None else None
        print(_run_summary(run, result, report, _fitness_name(config), pick))
    return EXIT_INTERRUPTED if interrupted else 0


def _fitness_name(config: dict[str, Any]) -> str:
    """What the search's accuracy was measured on: "val", or "train" (--fitness-split train)."""
    return "train" if config.get("fitness_split") == "train" else "val"


def _run_summary(
    run: Any,
    result: Any,
    report: dict[str, Any],
    fitness: str = "val",
    held_out_pick: str | None = None,
) -> str:
    from masksearch.progress import format_duration
    from masksearch.report import sparse_pick_warnings

    lines = [
        f"{result.n_evals} evaluations in {format_duration(result.wall_time)} "
        f"(stopped: {result.stopped}); {len(result.front)} masks on the Pareto front"
    ]
    warm = result.warm_start
    if warm:
        lines[0] += (
            f"; warm start ({', '.join(warm['sources'])}) took "
            f"{format_duration(warm['seconds'])} before it"
        )
    for row in report["at_targets"]:
        member, magnitude = row["member"], row["magnitude"]
        if member is None:
            lines.append(f"  density <= {row['target']:.4g}: no mask on the front")
            continue
        text = (
            f"  density <= {row['target']:.4g}: {fitness} accuracy "
            f"{member['accuracy']:.2%} "
            f"(magnitude {magnitude['accuracy']:.2%})"
        )
        if "test_accuracy" in member and magnitude and "test_accuracy" in magnitude:
            text += (
                f", test {member['test_accuracy']:.2%} (magnitude {magnitude['test_accuracy']:.2%})"
            )
        lines.append(text)
    lines += [f"warning: {warning}" for warning in sparse_pick_warnings(report["at_targets"])]
    lines.append(f"report: {run.report} (plots front.png, hypervolume.png)")
    if result.stopped == "interrupted":
        lines.append(f"interrupted: continue with `masksearch run --resume {run.path}`")
    elif report["at_targets"]:
        target = report["at_targets"][0]["target"]
        lines.append(
            f"export: masksearch export {run.path} --max-density {target:g} --finetune 2 "
            "--out model.pt"
        )
        if held_out_pick:
            # the search fitted the images it judged masks on; others are left to choose on
            lines.append(
                f"        masksearch export {run.path} --max-density {target:g} "
                f"--pick {held_out_pick} "
                "--out model.pt   (chosen on validation images the search never judged on)"
            )
    return "\n".join(lines)


def _load_run(directory: str, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from masksearch.rundir import RunDir

    run = RunDir(directory)
    if not run.path.is_dir():
        raise UserError(f"{directory} is not a directory; give a run directory of `masksearch run`")
    config = validate_values(run.read_json("config"), str(run.config))
    if getattr(args, "data_root", None):
        config["data_root"] = args.data_root
    if getattr(args, "device", None):
        config["device"] = args.device
    if getattr(args, "problem", None):
        config["problem"] = args.problem
    return run, config


def _rebuild_problem(config: dict[str, Any]) -> Any:
    """The run's problem, or None when it was saved from Python without a way to rebuild it."""
    if "problem" not in config:
        return None
    return build_problem(config)


def _unbuildable(run: Any) -> UserError:
    return UserError(
        f"{run.path} was saved from Python with a problem masksearch cannot rebuild; pass "
        "--problem pkg.module:function (a function returning the same PruningProblem), or "
        "build the problem with PruningProblem(..., source='pkg.module:function') before saving"
    )


def _require_results(run: Any) -> None:
    if not run.front.exists() and (run.checkpoint.exists() or run.config.exists()):
        raise UserError(
            f"{run.path} holds a run but no results yet (it was stopped before it wrote "
            f"them); finish it with `masksearch run --resume {run.path}`"
        )


def cmd_report(args: argparse.Namespace) -> int:
    from masksearch.report import write_report

    run, config = _load_run(args.dir, args)
    _require_results(run)
    problem = _rebuild_problem(config)
    with run.lock():
        path = write_report(run, problem)
    print(
        f"wrote {path}, {run.front_plot.name}, {run.hypervolume_plot.name}, {run.report_json.name}"
    )
    if problem is None:
        print(
            "no magnitude baseline or test scores: the run's problem cannot be rebuilt "
            "(pass --problem pkg.module:function to add them)",
            file=sys.stderr,
        )
    return 0


def _export_structured(
    args: argparse.Namespace,
    problem: Any,
    member: dict[str, Any],
    mask: Any,
    epochs: int,
    lr: float,
    seed: int,
) -> int:
    """``export --structured``: the member's channels removed for real, saved with torch.export."""
    from masksearch.encodings import GroupsEncoding
    from masksearch.structured import save_structured, shrink
    from masksearch.training import evaluate, recalibrate_batch_norm

    encoding = problem.encoding
    if not isinstance(encoding, GroupsEncoding):
        raise UserError(
            f"--structured removes whole channels, which needs a run made with --encoding "
            f"groups; this run used {encoding.name!r}, whose masks remove single weights. "
            "Export it without --structured (torch.nn.utils.prune form)"
        )
    genome = encoding.encode(mask)
    small = shrink(problem.model, genome, encoding.input_shape, ignored=encoding.ignored)
    if problem.recalibrate_bn and problem.train_data is not None:
        # the search scored this member with re-estimated statistics; give the model the same
        recalibrate_batch_norm(
            small, problem.train_data, batches=problem.recalibrate_bn, device=problem.device
        )
    _fine_tune(args, problem, member, small, epochs, lr, seed)
    small = small.to("cpu").eval()
    scores = evaluate(small, problem.test_data if problem.test_data is not None else problem.data)
    written = save_structured(small, args.out, encoding.input_shape)
    params = sum(p.numel() for p in small.parameters())
    dense = sum(p.numel() for p in problem.model.parameters())
    summary = {
        "out": str(written),
        "member": member["index"],
        **_pick_fields(member),
        "params": params,
        "dense_params": dense,
        "density": member["density"],
        "latency": member.get("latency"),
        "search_val_accuracy": member["accuracy"],
        "finetune_epochs": epochs,
        "distilled": bool(args.distill and epochs),
        "test_accuracy": scores.accuracy,
        "test_loss": scores.loss,
        "test_samples": scores.n,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    latency = member.get("latency")
    print(
        f"exported {_member_name(member)} to {written}: {params:,} of {dense:,} parameters "
        f"({params / dense:.1%})"
        + (f", table latency {latency:.3f} of the dense model's" if latency is not None else "")
        + f", test accuracy {scores.accuracy:.2%} on {scores.n} samples (search: "
        f"{problem.fitness_split} accuracy {member['accuracy']:.2%}"
        + (f", then {epochs} epoch(s) of {_tuning(args)})" if epochs else ", no fine-tuning)")
    )
    print(
        f"load it without masksearch: model = torch.export.load({str(written)!r}).module() "
        "(already in eval mode; it refuses .eval()/.train())"
    )
    return 0


def _held_out_pick(
    run: Any,
    results: Any,
    problem: Any,
    max_density: float,
    margin: float,
    quiet: bool,
    pick: str = "held-out",
) -> tuple[dict[str, Any], np.ndarray]:
    """``export --pick held-out``: the front member or warm-start seed with the lowest loss
    (``held-out-error``: 0/1 error) on the validation images the search never judged masks
    on, a seed kept unless a front member beats it by ``margin`` standard errors
    (:func:`masksearch.choose_held_out`)."""
    from masksearch.selection import HELD_OUT_PICKS, choose_held_out, scored_after_repair

    objective = HELD_OUT_PICKS[pick]
    if problem.held_out_data is None:
        raise UserError(
            f"--pick {pick} needs validation images the search did not judge masks on, and "
            f"{run.path} judged them on all of its validation images; search with --val-samples "
            "N (fewer than the split holds) or --fitness-split train (a problem of your own: "
            "PruningProblem(held_out_data=...)), or export with --pick fitness"
        )
    if scored_after_repair(problem):
        raise UserError(
            f"--pick {pick} scores masks on the frozen weights, but {run.path} scored them "
            "after repair steps or a batch-norm recalibration; export with --pick fitness"
        )
    candidates = results.masks
    n_front = len(candidates)
    try:
        seeds = run.read_seeds(results.layout)
    except ValueError as error:
        raise UserError(str(error)) from None
    if seeds is not None:
        candidates = np.concatenate([candidates, seeds])
    elif not quiet:
        print(
            f"note: {run.path} has no {run.seeds.name} (the masks its search began from): "
            "choosing among the front's members only",
            file=sys.stderr,
        )
    densities = candidates.mean(axis=1)
    if not (densities <= max_density + density_slack(candidates.shape[1])).any():
        raise UserError(
            f"no front member or warm-start seed has density <= {max_density:g}; the sparsest "
            f"has {densities.min():.4f}. Raise --max-density or search with that target "
            "density (--densities)"
        )
    try:
        chosen = choose_held_out(
            problem,
            candidates,
            densities=[max_density],
            objective=objective,
            incumbents=range(n_front, len(candidates)),
            margin=margin,
            flat_masks=True,
        )[float(max_density)]
    except ValueError as error:
        raise UserError(f"--pick {pick}: {error}") from None
    flat = candidates[chosen]
    if chosen < n_front:
        member = dict(next(m for m in results.members if int(m["index"]) == chosen))
    else:
        scores = problem.evaluator(flat[None])
        member = {
            "index": None,
            "warm_start_seed": chosen - n_front,
            "density": float(flat.mean()),
            "accuracy": 1.0 - float(scores["error"][0]),
        }
    member["candidates"] = {"front": n_front, "seeds": len(candidates) - n_front}
    member["pick"] = pick
    if not quiet:
        print(
            f"held-out pick on the {objective} of {len(problem.held_out_data)} validation "
            "images, among "
            f"{n_front} front members and {len(candidates) - n_front} warm-start seeds: "
            + (
                f"front member #{chosen}"
                if chosen < n_front
                else f"warm-start seed #{chosen - n_front} (no front member beat it by "
                f"{margin:g} standard errors)"
            ),
            file=sys.stderr,
        )
    return member, flat


def _margin(text: Any) -> float:
    if text is None:
        return 2.0
    try:
        margin = float(str(text).strip())
    except ValueError:
        margin = float("nan")
    if not (np.isfinite(margin) and margin >= 0):
        raise UserError(
            f"command line: --margin is a number of standard errors >= 0 (0 takes the lowest "
            f"held-out loss), got {text!r}"
        )
    return margin


def _member_name(member: dict[str, Any]) -> str:
    if member.get("index") is None:
        return f"warm-start seed #{member['warm_start_seed']}"
    return f"member #{member['index']}"


def _pick_fields(member: dict[str, Any]) -> dict[str, Any]:
    """What ``--json`` adds after a held-out pick: which seed, among how many candidates."""
    if "candidates" not in member:
        return {}
    seed = {"warm_start_seed": member["warm_start_seed"]} if member["index"] is None else {}
    return {**seed, "pick": member["pick"], "candidates": member["candidates"]}


def _fine_tune(
    args: argparse.Namespace,
    problem: Any,
    member: dict[str, Any],
    model: Any,
    epochs: int,
    lr: float,
    seed: int,
    mask: Any = None,
) -> None:
    """``export --finetune``: ``model`` trained in place on the problem's train split (the
    weights ``mask`` prunes kept at zero), under ``--distill`` taught by the dense model."""
    from masksearch.training import train

    if not epochs:
        return
    if not args.json:
        taught = ", distilled from the dense model" if args.distill else ""
        print(f"fine-tuning {_member_name(member)}: {epochs} epoch(s){taught}", file=sys.stderr)
    teacher = {"teacher": problem.model} if args.distill else {}
    train(
        model,
        problem.train_data,
        epochs=epochs,
        lr=lr,
        seed=seed,
        device=problem.device,
        mask=mask,
        **teacher,
    )


def _tuning(args: argparse.Namespace) -> str:
    return "fine-tuning distilled from the dense model" if args.distill else "fine-tuning"


def cmd_export(args: argparse.Namespace) -> int:
    from masksearch.front import best_within
    from masksearch.io import atomic_torch_save
    from masksearch.mask import Mask
    from masksearch.selection import HELD_OUT_PICKS
    from masksearch.training import evaluate

    run, config = _load_run(args.dir, args)
    _require_results(run)
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file path such as {out / 'model.pt'}")
    if args.pick not in ("fitness", *HELD_OUT_PICKS):
        raise UserError(f"--pick must be fitness, held-out or held-out-error, got {args.pick!r}")
    if args.pick in HELD_OUT_PICKS and args.member is not None:
        raise UserError(
            f"--pick {args.pick} chooses among the masks at --max-density; drop --member"
        )
    if args.pick == "fitness" and args.margin is not None:
        raise UserError(
            "--margin applies to --pick held-out (or held-out-error) only; drop it or add "
            "--pick held-out"
        )
    results = run.read_results()
    members = results.members
    if not members:
        raise UserError(f"the front of {run.path} is empty: the run found no feasible mask")
    if args.member is not None:
        position = check_integer("--member", args.member, "command line", 0)
        matches = [m for m in members if m["index"] == position]
        if not matches:
            raise UserError(f"the front has members 0..{len(members) - 1}; no member {position}")
        member = matches[0]
    else:
        max_density = check_density_value("--max-density", args.max_density, "command line")
        slack = density_slack(results.document.get("n_weights"))
        position = best_within(
            [m["density"] for m in members], [m["error"] for m in members], max_density, slack
        )
        if position is None and args.pick not in HELD_OUT_PICKS:
            sparsest = min(m["density"] for m in members)
            raise UserError(
                f"no mask on the front has density <= {max_density:g}; the sparsest has "
                f"{sparsest:.4f}. Raise --max-density or search with that target density "
                "(--densities)"
            )
        member = members[position] if position is not None else None
    margin = _margin(args.margin)
    epochs = check_integer("--finetune", args.finetune, "command line", 0)
    lr = check_number("--lr", args.lr, "command line")
    seed = check_integer("--seed", args.seed, "command line", 0)

    problem = _rebuild_problem(config)
    if problem is None:
        raise _unbuildable(run)
    if args.pick in HELD_OUT_PICKS:
        member, flat = _held_out_pick(
            run, results, problem, max_density, margin, args.json, args.pick
        )
    else:
        flat = results.masks[int(member["index"])]
    mask = Mask.from_flat(results.layout, flat)
    model = copy.deepcopy(problem.model)
    mask.validate(model)
    test = problem.test_data if problem.test_data is not None else problem.data
    if epochs and problem.train_data is None:
        raise UserError(
            f"--finetune needs training data, and problem {config['problem']} has none "
            "(give PruningProblem(train_data=...)); export with --finetune 0"
        )
    if args.distill and not epochs:
        raise UserError("--distill is how the model is fine-tuned; add --finetune EPOCHS")
    if args.structured:
        return _export_structured(args, problem, member, mask, epochs, lr, seed)
    _fine_tune(args, problem, member, model, epochs, lr, seed, mask)
    model = model.to("cpu").eval()
    mask.to_prune(model)
    scores = evaluate(model, test)
    kept = sum(int(b.sum()) for n, b in model.named_buffers() if n.endswith("_mask"))
    total = sum(b.numel() for n, b in model.named_buffers() if n.endswith("_mask"))
    atomic_torch_save(model.state_dict(), args.out)
    summary = {
        "out": str(args.out),
        "member": member["index"],
        **_pick_fields(member),
        "density": kept / total,
        "search_val_accuracy": member["accuracy"],
        "finetune_epochs": epochs,
        "distilled": bool(args.distill and epochs),
        "test_accuracy": scores.accuracy,
        "test_loss": scores.loss,
        "test_samples": scores.n,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"exported {_member_name(member)} to {args.out}: density {kept / total:.4f} "
            f"({kept} of {total} weights), test accuracy {scores.accuracy:.2%} on {scores.n} "
            f"samples (search: {_fitness_name(config)} accuracy {member['accuracy']:.2%}"
            + (f", then {epochs} epoch(s) of {_tuning(args)})" if epochs else ", no fine-tuning)")
        )
        print(
            "load it: model = <same architecture>; masksearch.Mask.ones(model).to_prune(model); "
            f"model.load_state_dict(torch.load({str(args.out)!r}))"
        )
    return 0
