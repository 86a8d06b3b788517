"""Results and report of a run directory (see :mod:`masksearch.rundir` for the layout).

:func:`save_results` writes what a search found (``front.json``, ``masks.npz``,
``history.json``); :func:`write_report` turns those files into ``report.md`` with two PNG plots
(the Pareto front against global magnitude pruning, hypervolume over evaluations) and
``report.json`` with the numbers behind them. ``write_report`` reads only the saved files plus
the problem (for the magnitude baseline), so ``masksearch report DIR`` regenerates everything.

Magnitude masks and test scores are judged by fresh exact evaluators on the problem's own
validation and test splits, so they compare like for like with the front.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from masksearch.front import best_within, density_slack
from masksearch.mask import Mask
from masksearch.progress import format_duration
from masksearch.rundir import RunDir, file_sha256, save_masks

__all__ = [
    "magnitude_curve",
    "save_results",
    "save_run",
    "split_scores",
    "write_report",
    "run_config",
]

MAX_TABLE_ROWS = 60
N_MAGNITUDE_POINTS = 10


def split_scores(problem: Any, masks: np.ndarray, split: Any) -> dict[str, np.ndarray]:
    """``{"loss", "error", "accuracy"}`` of flat ``masks`` on ``split`` by an exact evaluator
    that scores as the problem does: after its repair steps and batch-norm re-estimation when
    it has them, the loss smoothed by its ``label_smoothing``, so test figures compare like for
    like with the search's validation ones."""
    from masksearch.evaluators import RepairedEvaluator, make_evaluator

    if len(masks) == 0:
        return {k: np.zeros(0) for k in ("loss", "error", "accuracy")}
    steps = int(getattr(problem, "repair_steps", 0) or 0)
    recalibrate = int(getattr(problem, "recalibrate_bn", 0) or 0)
    smoothing = float(getattr(problem, "label_smoothing", 0.0))
    if steps or recalibrate:
        evaluator: Any = RepairedEvaluator(
            problem.model,
            split,
            problem.layout,
            problem.train_data,
            steps=steps,
            recalibrate_bn=recalibrate,
            device=problem.device,
            label_smoothing=smoothing,
        )
    else:
        evaluator = make_evaluator(
            problem.model, split, problem.layout, device=problem.device, label_smoothing=smoothing
        )
    scores = {k: np.asarray(v, dtype=np.float64) for k, v in evaluator(masks).items()}
    scores["accuracy"] = 1.0 - scores["error"]
    return scores


def save_results(run: RunDir, result: Any, problem: Any) -> dict[str, Any]:
    """Write ``front.json``, ``masks.npz`` and ``history.json`` for ``result``; return the front.

    Each front row holds the search's metrics (on the validation split), ``index`` (its row in
    ``masks.npz``) and, when the problem has test data, ``test_accuracy`` and ``test_loss``.
    """
    from masksearch.progress import summarize

    front = result.front
    rows = front.rows()
    if len(front):
        masks = problem.encoding.decode(front.genomes)
        genomes = front.genomes
    else:
        masks = np.zeros((0, problem.layout.n_total), dtype=bool)
        genomes = None
    if problem.test_data is not None and len(masks):
        test = split_scores(problem, masks, problem.test_data)
        for row, accuracy, loss in zip(rows, test["accuracy"], test["loss"], strict=True):
            row["test_accuracy"] = float(accuracy)
            row["test_loss"] = float(loss)
    members = [{"index": index, **row} for index, row in enumerate(rows)]
    # masks and history first, front.json last with the masks' digest: a kill in between
    # leaves a pair that RunDir.read_results refuses, never one that silently disagrees
    save_masks(run.masks, problem.layout, masks, genomes)
    run.write_json("history", [summarize(record) for record in result.history])
    document = {
        "problem": problem.name,
        "objectives": list(front.objectives),
        "densities": list(problem.densities),
        "n_weights": problem.layout.n_total,
        "n_evals": result.n_evals,
        "wall_time": result.wall_time,
        "stopped": result.stopped,
        "seed": result.seed,
        "warm_start": getattr(result, "warm_start", None),
        "masks_sha256": file_sha256(run.masks),
        "members": members,
    }
    run.write_json("front", document)
    return document


def save_seeds(run: RunDir, problem: Any, initial: Any) -> None:
    """Write the masks a search starts from (``initial``, as :func:`masksearch.search` takes it)
    to ``seeds.npz``: ``masksearch export --pick held-out`` keeps a seed unless a front member
    beats it on held-out images."""
    from masksearch.warmstart import as_initial

    genomes = as_initial(problem, initial)
    save_masks(run.seeds, problem.layout, problem.encoding.decode(genomes), genomes)


def save_run(
    out: str | os.PathLike[str],
    result: Any,
    problem: Any,
    *,
    settings: dict[str, Any] | None = None,
) -> RunDir:
    """Write ``result`` of a search on ``problem`` as a run directory: ``config.json``,
    ``environment.json``, results and report. ``masksearch report`` and ``masksearch export``
    then work on it; they rebuild the problem from ``problem.source`` (set by
    :mod:`masksearch.catalogue`, or ``PruningProblem(source="pkg.module:function")``) or from
    their ``--problem`` option. ``settings`` (e.g. :attr:`masksearch.builder.Run.settings`) are
    stored beside the problem's own. Replaces a run already in ``out``, its checkpoint, log and
    seeds included (they belong to the search it replaces); ``search(..., out=DIR)`` writes the same
    directory as the search goes, resumable.
    """
    from masksearch.device import resolve_device

    run = RunDir(out)
    with run.lock():
        for stale in (run.checkpoint, run.log, run.seeds):
            stale.unlink(missing_ok=True)
        config = run_config(problem, result.seed, run.path, settings)
        run.record_start(config, device=str(resolve_device(problem.device)), resume=False)
        save_results(run, result, problem)
        write_report(run, problem)
    return run


def run_config(
    problem: Any, seed: int, out: str | os.PathLike[str], settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``config.json`` of a run on ``problem``: ``settings`` with what the problem holds (its
    ``source``, encoding and its options, objectives, densities, samples, device)."""
    from masksearch.settings import CONFIG_KEYS, validate_values

    config = {
        "encoding_options": problem.encoding.options,
        **(settings or {}),
        "problem": getattr(problem, "source", None),
        **problem.settings(),
        "seed": seed,
        "out": str(out),
    }
    config["encoding_options"] = {
        k: v for k, v in config["encoding_options"].items() if v is not None
    }
    return validate_values({k: v for k, v in config.items() if k in CONFIG_KEYS}, "settings")


# the magnitude baseline of an encoding that removes whole channels removes whole channels too:
# an unstructured mask at the same density is no rival for a smaller, faster model
MAGNITUDE_BASELINES: dict[str, str] = {
    "global": "global magnitude pruning (largest |w| kept) at exactly that density",
    "groups": "group magnitude pruning (whole channels of every dependency group, the lowest "
    "group L2 norms removed first, never a group's last channel), the densest at or below "
    "that density",
    "channels": "channel magnitude pruning (whole channels, the lowest L2 norms removed "
    "first, never a layer's last channel), the densest at or below that density",
}


def magnitude_curve(problem: Any, densities: Sequence[float]) -> list[dict[str, Any]]:
    """Magnitude pruning at each density, scored on validation (and test) data as the
    problem scores: global magnitude, or for the ``groups`` and ``channels`` encodings their
    own whole-channel magnitude pruning (``method`` in each point says which)."""
    densities = sorted({float(d) for d in densities})
    if not densities:
        return []
    encoding = problem.encoding
    method = encoding.name if encoding.name in MAGNITUDE_BASELINES else "global"
    if method == "global":
        names = problem.layout.names
        masks = np.stack(
            [Mask.magnitude(problem.model, density, names=names).flat() for density in densities]
        )
    else:
        # at or below each density, as the front members it is compared with
        masks = encoding.decode(encoding.magnitude(densities, at_most=True))
    val = split_scores(problem, masks, problem.data)
    test = split_scores(problem, masks, problem.test_data) if problem.test_data else None
    curve = []
    for i, _density in enumerate(densities):
        point: dict[str, Any] = {
            "density": float(masks[i].mean()),
            "accuracy": float(val["accuracy"][i]),
            "loss": float(val["loss"][i]),
            "method": method,
        }
        if test is not None:
            point["test_accuracy"] = float(test["accuracy"][i])
            point["test_loss"] = float(test["loss"][i])
        curve.append(point)
    return curve


def curve_densities(members: list[dict[str, Any]], targets: Sequence[float]) -> list[float]:
    """~10 log-spaced densities across the front's range, plus the problem's targets."""
    densities = [float(m["density"]) for m in members if m["density"] > 0]
    points = list(targets)
    if densities:
        low, high = min(densities), max(densities)
        if high > low:
            points.extend(np.geomspace(low, high, N_MAGNITUDE_POINTS).tolist())
        else:
            points.append(low)
    return sorted({round(p, 6) for p in points if 0 < p <= 1})


def at_targets(
    members: list[dict[str, Any]],
    curve: list[dict[str, float]],
    targets: Sequence[float],
    slack: float = 1e-12,
) -> list[dict[str, Any]]:
    """Per target density: the best front member within it and magnitude at that density."""
    rows = []
    for target in targets:
        position = best_within(
            [m["density"] for m in members], [m["error"] for m in members], target, slack
        )
        best = None if position is None else members[position]
        # a structured baseline's points sit at or below their densities: never compare with
        # one denser than the target allows, when a point within it exists
        within = [p for p in curve if p["density"] <= target + slack]
        candidates = within if within and curve[0].get("method", "global") != "global" else curve
        magnitude = (
            min(candidates, key=lambda p: abs(p["density"] - target)) if candidates else None
        )
        rows.append({"target": float(target), "member": best, "magnitude": magnitude})
    return rows


def held_out_picks(
    run: RunDir,
    results: Any,
    problem: Any,
    targets: Sequence[float],
    pick: str = "held-out",
) -> dict[str, Any] | None:
    """At each target density, the guarded held-out pick among the front's members and the
    run's seeds (``seeds.npz``), as ``masksearch export --pick {pick}`` makes it, with its
    held-out and test accuracy. None when the problem has no held-out images, or scores masks
    after a repair (the pick scores frozen weights)."""
    from masksearch.selection import HELD_OUT_PICKS, choose_held_out, scored_after_repair

    if (
        problem is None
        or getattr(problem, "held_out_data", None) is None
        or scored_after_repair(problem)
        or not targets
        or len(results.masks) == 0
    ):
        return None
    candidates, n_front = results.masks, len(results.masks)
    try:
        seeds = run.read_seeds(results.layout)
    except ValueError:
        seeds = None  # unreadable or another model's: the export refuses it and says why
    if seeds is not None:
        candidates = np.concatenate([candidates, seeds])
    density = candidates.mean(axis=1)
    slack = density_slack(results.layout.n_total)
    reachable = [float(t) for t in targets if (density <= t + slack).any()]
    chosen = (
        choose_held_out(
            problem,
            candidates,
            densities=reachable,
            objective=HELD_OUT_PICKS[pick],
            incumbents=range(n_front, len(candidates)),
            flat_masks=True,
        )
        if reachable
        else {}
    )
    rows = sorted(set(chosen.values()))
    held = split_scores(problem, candidates[rows], problem.held_out_data)
    test = split_scores(problem, candidates[rows], problem.test_data) if problem.test_data else None
    picks = []
    for target in map(float, targets):
        if target not in chosen:
            picks.append({"target": target, "source": None})
            continue
        row, at = chosen[target], rows.index(chosen[target])
        picks.append(
            {
                "target": target,
                "source": "front" if row < n_front else "seed",
                "index": row if row < n_front else row - n_front,
                "density": float(density[row]),
                "held_out_accuracy": float(held["accuracy"][at]),
                "test_accuracy": None if test is None else float(test["accuracy"][at]),
            }
        )
    return {
        "images": len(problem.held_out_data),
        "seeds": len(candidates) - n_front,
        "pick": pick,
        "picks": picks,
    }


def fitness_label(config: dict) -> str:
    """What the search's "val" figures were measured on."""
    if config.get("fitness_split") == "train":
        return "training images (`fitness_split = train`)"
    return "validation split"


def sparse_pick_warnings(comparison: Sequence[dict[str, Any]]) -> list[str]:
    """A warning for each target whose best front member keeps under half the weights the
    target allows.

    More weights rarely hurt, so a pick that sparse means nothing near the target scored better
    than far sparser masks: the objective could not tell them apart. Seen on ResNet-8 with
    weight masks at 10% (``benchmarks/results/quality_resnet8.md``): scored on the dense
    model's batch-norm statistics every mask near 10% is near chance, and the pick kept 0.4%.
    """
    warnings = []
    for row in comparison:
        member, target = row["member"], row["target"]
        if member is None or member["density"] >= target / 2:
            continue
        warnings.append(
            f"density <= {target:.4g}: the best mask keeps only {member['density']:.4f} of the "
            "weights: no mask nearer the target scored better than far sparser ones, so the "
            "objective cannot tell them apart there (on a model with batch norm: statistics the "
            "masks no longer fit). Start from learned masks (--init magnitude,supermask-path) "
            "or score after re-estimating batch norm (--recalibrate-bn 2)"
        )
    return warnings


def write_report(run: RunDir, problem: Any | None = None) -> Any:
    """Write ``report.md``, ``report.json``, ``front.png`` and ``hypervolume.png`` into ``run``.

    ``problem`` (rebuilt from ``config.json`` when None is given by the CLI) supplies the model
    and data for the magnitude baseline; returns the report's path.
    """
    results = run.read_results()
    front = results.document
    history = run.read_json("history") if run.history.exists() else []
    config = run.read_json("config") if run.config.exists() else {}
    environment = run.read_json("environment") if run.environment.exists() else {}
    members = front["members"]
    targets = front.get("densities") or []
    curve = (
        magnitude_curve(problem, curve_densities(members, targets)) if problem is not None else []
    )
    if problem is not None and members and "test_accuracy" not in members[0] and problem.test_data:
        order = [int(m["index"]) for m in members]
        test = split_scores(problem, results.masks[order], problem.test_data)
        for member, accuracy, loss in zip(members, test["accuracy"], test["loss"], strict=True):
            member["test_accuracy"], member["test_loss"] = float(accuracy), float(loss)
    comparison = at_targets(members, curve, targets, density_slack(front.get("n_weights")))
    from masksearch.selection import held_out_pick_for

    held_out = held_out_picks(run, results, problem, targets, held_out_pick_for(config))
    report = {"magnitude": curve, "at_targets": comparison, "front": members}
    if held_out is not None:
        report["held_out"] = held_out
    run.write_json("report_json", report)
    plot_front(run.front_plot, members, curve, targets, title=_title(front, config))
    plot_hypervolume(run.hypervolume_plot, history, title=_title(front, config))
    text = render_markdown(
        front, members, curve, comparison, history, config, environment, held_out=held_out
    )
    from masksearch.io import atomic_write_text

    return atomic_write_text(text, run.report)


def _title(front: dict[str, Any], config: dict[str, Any]) -> str:
    solver = config.get("solver", "")
    encoding = config.get("encoding", "")
    return f"{front.get('problem', '')} · {solver} · {encoding} · {front.get('n_evals', 0)} evals"


def _figure(width: float = 6.4, height: float = 4.4) -> Any:
    # Figure without pyplot: no global state, no GUI backend, safe in any thread
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(figure)
    return figure


def plot_front(
    path: str | os.PathLike[str],
    members: list[dict[str, Any]],
    curve: list[dict[str, float]],
    targets: Sequence[float],
    *,
    title: str = "",
) -> None:
    """Accuracy against density (log axis): the front as steps, magnitude as a line."""
    figure = _figure()
    axes = figure.add_subplot()
    if members:
        density = np.array([m["density"] for m in members])
        order = np.argsort(density)
        accuracy = np.array([m["accuracy"] for m in members])[order]
        axes.step(density[order], accuracy, where="post", color="C0", alpha=0.4)
        axes.plot(density[order], accuracy, "o", color="C0", ms=3, label="search (val)")
        if "test_accuracy" in members[0]:
            test = np.array([m["test_accuracy"] for m in members])[order]
            axes.plot(density[order], test, "x", color="C0", ms=3, alpha=0.7, label="search (test)")
    if curve:
        density = [p["density"] for p in curve]
        axes.plot(density, [p["accuracy"] for p in curve], "-", color="C3", label="magnitude (val)")
        if "test_accuracy" in curve[0]:
            axes.plot(
                density,
                [p["test_accuracy"] for p in curve],
                "--",
                color="C3",
                alpha=0.7,
                label="magnitude (test)",
            )
    for target in targets:
        axes.axvline(target, color="grey", lw=0.6, ls=":")
    axes.set_xscale("log")
    axes.set_xlabel("density (fraction of prunable weights kept)")
    axes.set_ylabel("accuracy")
    axes.set_title(title, fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    if members or curve:
        axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    _save_figure(figure, path)


def plot_hypervolume(
    path: str | os.PathLike[str], history: list[dict[str, Any]], *, title: str = ""
) -> None:
    """Hypervolume of the archive after each generation against evaluations."""
    figure = _figure(6.4, 3.6)
    axes = figure.add_subplot()
    if history:
        axes.plot(
            [r["n_evals"] for r in history],
            [r["hypervolume"] if r["hypervolume"] is not None else np.nan for r in history],
            "-",
            color="C0",
        )
    axes.set_xlabel("evaluations")
    axes.set_ylabel("hypervolume")
    axes.set_title(title, fontsize=9)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    _save_figure(figure, path)


def _save_figure(figure: Any, path: str | os.PathLike[str]) -> None:
    import io

    from masksearch.io import atomic_write

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def _held_out_section(held_out: dict[str, Any], has_test: bool) -> list[str]:
    """The report's table of the guarded held-out picks (``export --pick held-out[-error]``)."""
    from masksearch.selection import HELD_OUT_PICKS

    pick = held_out.get("pick", "held-out")  # reports written before the error pick: loss
    objective = {"loss": "loss", "error": "0/1 error"}[HELD_OUT_PICKS[pick]]
    lines = [
        "",
        "## Chosen on held-out images",
        "",
        (
            f"At each target, the front member or warm-start seed ({held_out['seeds']} seeds) "
            if held_out["seeds"]
            else "At each target, the front member (the run kept no warm-start seeds) "
        )
        + f"with the lowest {objective} on the {held_out['images']} validation images the "
        "search never judged masks on, a seed kept unless a member beats it by two standard "
        f"errors: what `masksearch export DIR --max-density D --pick {pick}` exports.",
        "",
        "| density ≤ | pick | density | held-out acc |" + (" test acc |" if has_test else ""),
        "|---|---|---|---|" + ("---|" if has_test else ""),
    ]
    for pick in held_out["picks"]:
        if pick["source"] is None:
            cells = [f"{pick['target']:.4g}", "none", "–", "–"] + (["–"] if has_test else [])
        else:
            name = "member" if pick["source"] == "front" else "warm-start seed"
            cells = [
                f"{pick['target']:.4g}",
                f"{name} #{pick['index']}",
                f"{pick['density']:.4f}",
                _pct(pick["held_out_accuracy"]),
            ] + ([_pct(pick["test_accuracy"])] if has_test else [])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def render_markdown(
    front: dict[str, Any],
    members: list[dict[str, Any]],
    curve: list[dict[str, float]],
    comparison: list[dict[str, Any]],
    history: list[dict[str, Any]],
    config: dict[str, Any],
    environment: dict[str, Any],
    *,
    held_out: dict[str, Any] | None = None,
) -> str:
    """The text of ``report.md``."""
    has_test = bool(members) and "test_accuracy" in members[0]
    lines = [
        f"# masksearch run: {front.get('problem', '?')}",
        "",
        f"Solver **{config.get('solver', '?')}** on the **{config.get('encoding', '?')}** encoding, "
        f"objectives {', '.join(front.get('objectives', []))}, seed {front.get('seed', '?')}: "
        f"{front.get('n_evals', 0)} evaluations in {format_duration(front.get('wall_time'))} "
        f"(stopped: {front.get('stopped', '?')}), {len(members)} masks on the Pareto front.",
    ]
    warm = front.get("warm_start")
    if warm:
        lines.append(
            f"It started from {warm['n_genomes']} warm-start masks ({', '.join(warm['sources'])}) "
            f"that took {format_duration(warm['seconds'])} to make"
            + (f", {warm['epochs']:g} epochs of training" if warm.get("epochs") else "")
            + ", on top of the search's time."
        )
    if environment:
        versions = environment.get("versions", {})
        lines.append(
            f"Device {environment.get('device', '?')}, {environment.get('cpu_count', '?')} CPUs, "
            f"torch {versions.get('torch', '?')}, masksearch {versions.get('masksearch', '?')}, "
            f"started {environment.get('started', '?')}."
        )
    lines += ["", "## At the target densities", ""]
    header = "| density ≤ | search density | search val acc | magnitude val acc |"
    rule = "|---|---|---|---|"
    if has_test:
        header += " search test acc | magnitude test acc |"
        rule += "---|---|"
    lines += [header, rule]
    for row in comparison:
        member, magnitude = row["member"], row["magnitude"]
        cells = [
            f"{row['target']:.4g}",
            f"{member['density']:.4f} (#{member['index']})" if member else "none",
            _pct(member["accuracy"]) if member else "–",
            _pct(magnitude["accuracy"]) if magnitude else "–",
        ]
        if has_test:
            cells += [
                _pct(member.get("test_accuracy")) if member else "–",
                _pct(magnitude.get("test_accuracy")) if magnitude else "–",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    warnings = sparse_pick_warnings(comparison)
    if warnings:
        lines += ["", *(f"**Warning**: {warning}." for warning in warnings)]
    baseline = MAGNITUDE_BASELINES[curve[0].get("method", "global") if curve else "global"]
    repair = config.get("repair_steps") or 0
    scored = f"after the search's {repair} repair steps" if repair else "no fine-tuning"
    lines += [
        "",
        f"Magnitude: {baseline}, {scored}. Val = the {fitness_label(config)} the search "
        "optimised on; test = held out."
        + (
            f" Losses are label-smoothed (ε = {config['label_smoothing']:g}), as the search "
            "minimised them."
            if config.get("label_smoothing")
            else ""
        ),
        *(_held_out_section(held_out, has_test) if held_out is not None else []),
        "",
        "![Pareto front against magnitude pruning](front.png)",
        "",
        "![Hypervolume over evaluations](hypervolume.png)",
        "",
        f"## Pareto front ({len(members)} members)",
        "",
    ]
    shown = members
    if len(members) > MAX_TABLE_ROWS:
        picks = np.unique(np.linspace(0, len(members) - 1, MAX_TABLE_ROWS).round().astype(int))
        shown = [members[i] for i in picks]
        lines += [
            f"{len(shown)} of {len(members)} members, evenly spaced; all are in front.json.",
            "",
        ]
    header = "| # | density | val accuracy | val loss |"
    rule = "|---|---|---|---|"
    if has_test:
        header += " test accuracy |"
        rule += "---|"
    lines += [header, rule]
    for member in shown:
        cells = [
            str(member["index"]),
            f"{member['density']:.4f}",
            _pct(member["accuracy"]),
            f"{member['loss']:.4f}",
        ]
        if has_test:
            cells.append(_pct(member.get("test_accuracy")))
        lines.append("| " + " | ".join(cells) + " |")
    if curve:
        lines += [
            "",
            "## Magnitude baseline",
            "",
            "| density | val accuracy |"
            + (" test accuracy |" if "test_accuracy" in curve[0] else ""),
            "|---|---|" + ("---|" if "test_accuracy" in curve[0] else ""),
        ]
        for point in curve:
            cells = [f"{point['density']:.4f}", _pct(point["accuracy"])]
            if "test_accuracy" in point:
                cells.append(_pct(point["test_accuracy"]))
            lines.append("| " + " | ".join(cells) + " |")
    if history:
        last = history[-1]
        lines += [
            "",
            "## Search",
            "",
            f"{len(history)} generations; final hypervolume {last.get('hypervolume') or 0:.4f} "
            f"(reference: the worst value of each objective).",
        ]
    lines += [
        "",
        "## Files",
        "",
        "`config.json` (resolved configuration), `environment.json`, `front.json` (one row per "
        "member; `index` = row in `masks.npz`), `masks.npz` (bit-packed flat masks + layout), "
        "`history.json`, `log.jsonl`, `checkpoint.pkl`.",
        "",
        "Take a pruned model away with "
        "`masksearch export DIR --max-density D --finetune EPOCHS --out model.pt`.",
        "",
    ]
    return "\n".join(lines)
