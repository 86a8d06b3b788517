from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from masksearch.front import density_slack
from masksearch.mask import Layout, Mask
from masksearch.report import (
    at_targets,
    curve_densities,
    magnitude_curve,
    save_results,
    write_report,
)
from masksearch.rundir import RunDir, load_mask, load_masks, save_masks
from masksearch.training import evaluate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A small real search on digits, its results and report written."""
    from masksearch.catalogue import digits_mlp
    from masksearch.search import search
    from masksearch.solvers import make_solver

    problem = digits_mlp(val_samples=150)
    result = search(problem, make_solver("nsga2", pop_size=20), budget=100, seed=0)
    run = RunDir(tmp_path_factory.mktemp("run"))
    run.write_json("config", {"problem": "digits_mlp", "solver": "nsga2", "encoding": "weights"})
    save_results(run, result, problem)
    write_report(run, problem)
    return run, result, problem


def test_masks_round_trip_with_an_odd_layout(tmp_path):
    layout = Layout(("a.weight", "b.weight"), ((3, 5), (7,)))  # 22 bits: not a byte multiple
    masks = np.random.default_rng(0).random((4, layout.n_total)) < 0.3
    save_masks(tmp_path / "masks.npz", layout, masks)
    loaded_layout, loaded = load_masks(tmp_path / "masks.npz")
    assert loaded_layout == layout
    np.testing.assert_array_equal(loaded, masks)
    mask = load_mask(tmp_path / "masks.npz", 2)
    np.testing.assert_array_equal(mask.flat(), masks[2])
    assert mask.tensors["a.weight"].shape == (3, 5)


def test_load_masks_rejects_a_damaged_file(tmp_path):
    (tmp_path / "masks.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a masksearch masks file"):
        load_masks(tmp_path / "masks.npz")


def test_front_json_and_masks_match_the_result(finished):
    run, result, problem = finished
    front = json.loads(run.front.read_text())
    assert front["n_evals"] == result.n_evals and len(front["members"]) == len(result.front)
    layout, masks = load_masks(run.masks)
    assert layout == problem.layout
    np.testing.assert_array_equal(masks, problem.encoding.decode(result.front.genomes))
    for member, row in zip(front["members"], result.front.rows(), strict=True):
        assert member["density"] == pytest.approx(masks[member["index"]].mean())
        assert member["error"] == pytest.approx(row["error"])
    assert len(json.loads(run.history.read_text())) == len(result.history)


def test_test_accuracy_matches_a_plain_masked_forward(finished):
    run, _, problem = finished
    members = json.loads(run.front.read_text())["members"]
    for member in (members[0], members[-1]):
        model = load_mask(run.masks, member["index"]).apply(copy.deepcopy(problem.model))
        expected = evaluate(model, problem.test_data).accuracy
        assert member["test_accuracy"] == pytest.approx(expected, abs=1e-12)


def test_magnitude_curve_matches_magnitude_pruning_evaluated_directly(finished):
    _, _, problem = finished
    curve = magnitude_curve(problem, [0.3, 0.1])
    for point, density in zip(curve, [0.1, 0.3], strict=True):
        model = Mask.magnitude(problem.model, density).apply(copy.deepcopy(problem.model))
        assert point["accuracy"] == pytest.approx(evaluate(model, problem.data).accuracy)
        assert point["test_accuracy"] == pytest.approx(evaluate(model, problem.test_data).accuracy)
        assert point["density"] == pytest.approx(density, abs=1 / problem.layout.n_total)


def test_report_files_and_tables(finished):
    run, result, problem = finished
    for plot in (run.front_plot, run.hypervolume_plot):
        assert plot.read_bytes()[:8] == PNG_MAGIC
    text = run.report.read_text()
    assert "![Pareto front against magnitude pruning](front.png)" in text
    assert f"## Pareto front ({len(result.front)} members)" in text
    report = json.loads(run.report_json.read_text())
    assert [row["target"] for row in report["at_targets"]] == list(problem.densities)
    # the report's densities span the front and include every target
    members = json.loads(run.front.read_text())["members"]
    densities = curve_densities(members, problem.densities)
    assert set(np.round(problem.densities, 6)) <= set(densities)


def test_the_report_shows_the_pick_made_on_held_out_images(finished):
    run, _, problem = finished  # judged on 150 validation images: the other 150 are held out
    report = json.loads(run.report_json.read_text())
    held_out = report["held_out"]
    assert held_out["images"] == len(problem.held_out_data) == 150
    assert held_out["seeds"] == 0  # saved without seeds.npz: the front's members only
    members, masks = json.loads(run.front.read_text())["members"], load_masks(run.masks)[1]
    for pick in held_out["picks"]:
        target = pick["target"]
        # an independent computation: each member within the target, pruned and evaluated
        within = [m for m in members if masks[m["index"]].sum() <= round(target * masks.shape[1])]
        scores = {
            m["index"]: evaluate(
                Mask.from_flat(problem.layout, masks[m["index"]]).apply(
                    copy.deepcopy(problem.model)
                ),
                problem.held_out_data,
            )
            for m in within
        }
        best = min(scores, key=lambda index: scores[index].loss)
        assert pick["source"] == "front" and pick["index"] == best
        assert pick["held_out_accuracy"] == pytest.approx(scores[best].accuracy)
        chosen = next(m for m in members if m["index"] == best)
        assert pick["test_accuracy"] == pytest.approx(chosen["test_accuracy"])
    text = run.report.read_text()
    assert "## Chosen on held-out images" in text
    assert (
        "the front member (the run kept no warm-start seeds) with the lowest loss on the 150"
        in (" ".join(text.split()))
    )


def test_seeds_of_another_model_are_refused_with_the_fix(tmp_path):
    run = RunDir(tmp_path)
    layout = Layout(("a.weight",), ((3, 4),))
    assert run.read_seeds(layout) is None  # a run that kept no seeds
    masks = np.random.default_rng(0).random((2, 12)) < 0.5
    save_masks(run.seeds, layout, masks)
    np.testing.assert_array_equal(run.read_seeds(layout), masks)
    with pytest.raises(ValueError, match="delete seeds.npz"):
        run.read_seeds(Layout(("a.weight",), ((4, 3),)))


def test_report_regenerates_from_the_saved_files(finished):
    run, _, problem = finished
    before = json.loads(run.report_json.read_text())
    for path in (run.report, run.report_json, run.front_plot, run.hypervolume_plot):
        path.unlink()
    write_report(run, problem)
    assert json.loads(run.report_json.read_text()) == before
    assert run.front_plot.exists() and run.report.exists()


def test_at_targets_picks_the_most_accurate_member_within_each_density():
    members = [
        {"index": 0, "density": 0.3, "error": 0.1},
        {"index": 1, "density": 0.09, "error": 0.3},
        {"index": 2, "density": 0.05, "error": 0.4},
    ]
    curve = [{"density": 0.1, "accuracy": 0.6}, {"density": 0.01, "accuracy": 0.1}]
    rows = at_targets(members, curve, (0.1, 0.01))
    assert rows[0]["member"]["index"] == 1 and rows[0]["magnitude"]["density"] == 0.1
    assert rows[1]["member"] is None and rows[1]["magnitude"]["density"] == 0.01


def test_a_mask_rounded_to_the_nearest_weight_meets_its_target():
    # 0.2 of 17,024 weights is 3,404.8: the mask keeps 3,405 (density 0.20001...)
    member = {"index": 0, "density": 3405 / 17024, "error": 0.1}
    assert at_targets([member], [], (0.2,))[0]["member"] is None
    slack = density_slack(17024)
    assert at_targets([member], [], (0.2,), slack)[0]["member"] is member


def test_a_pick_far_below_its_target_is_flagged_in_the_report_and_the_run_summary():
    from types import SimpleNamespace

    from masksearch.cli.commands import _run_summary
    from masksearch.report import render_markdown, sparse_pick_warnings

    members = [
        {"index": 0, "density": 0.2, "error": 0.1, "accuracy": 0.9, "loss": 0.3},
        {"index": 1, "density": 0.0045, "error": 0.85, "accuracy": 0.15, "loss": 2.2},
    ]
    curve = [{"density": 0.2, "accuracy": 0.3}, {"density": 0.1, "accuracy": 0.1}]
    comparison = at_targets(members, curve, (0.2, 0.1))
    (warning,) = sparse_pick_warnings(comparison)  # 0.2 is met at 0.2: no warning there
    assert warning.startswith("density <= 0.1: the best mask keeps only 0.0045")
    assert "--init magnitude,supermask-path" in warning and "--recalibrate-bn" in warning
    # a pick at half the target or more is a normal pick
    assert sparse_pick_warnings(at_targets(members[:1], curve, (0.4,))) == []
    text = render_markdown({"problem": "p"}, members, curve, comparison, [], {}, {})
    assert f"**Warning**: {warning}." in text
    result = SimpleNamespace(
        n_evals=10, wall_time=1.0, stopped="budget", front=members, warm_start=None
    )
    run = SimpleNamespace(report="r/report.md", path="r")
    summary = _run_summary(run, result, {"at_targets": comparison})
    assert f"warning: {warning}" in summary.splitlines()


@pytest.mark.parametrize("recalibrate_bn", [0, 2])
def test_a_structured_problems_magnitude_baseline_removes_whole_channels(
    residual_problem, recalibrate_bn
):
    problem = residual_problem(recalibrate_bn)
    encoding = problem.encoding
    curve = magnitude_curve(problem, [0.7, 0.4])
    # group magnitude, scored exactly as the problem scores a genome (batch norm re-estimated
    # when the problem does that), not an unstructured weight mask
    genomes = encoding.magnitude([0.4, 0.7], at_most=True)
    scored = problem.evaluate(genomes)
    assert [point["method"] for point in curve] == ["groups", "groups"]
    # at or below each density, as the front members it is compared with
    assert all(p["density"] <= target for p, target in zip(curve, [0.4, 0.7], strict=True))
    assert [point["density"] for point in curve] == pytest.approx(
        encoding.decode(genomes).mean(axis=1).tolist()
    )
    assert [point["accuracy"] for point in curve] == pytest.approx(
        (1.0 - scored.metrics["error"]).tolist()
    )
    assert [point["loss"] for point in curve] == pytest.approx(scored.metrics["loss"].tolist())
    # the test split is the validation one here: the same scores again
    assert [point["test_accuracy"] for point in curve] == pytest.approx(
        [point["accuracy"] for point in curve]
    )


def test_a_weight_problems_magnitude_baseline_is_global(finished):
    _, _, problem = finished
    (point,) = magnitude_curve(problem, [0.3])
    assert point["method"] == "global"
    mask = Mask.magnitude(problem.model, 0.3, names=problem.layout.names)
    assert point["accuracy"] == pytest.approx(
        evaluate(mask.apply(copy.deepcopy(problem.model)), problem.data).accuracy
    )


def test_a_structured_baseline_is_never_denser_than_its_target():
    # one point just over the target, one under it: the under one is compared, even though
    # the other is nearer; a global curve keeps taking the nearest point
    over = {"density": 0.2009, "accuracy": 0.9, "loss": 0.1, "method": "groups"}
    under = {"density": 0.1950, "accuracy": 0.8, "loss": 0.2, "method": "groups"}
    member = {"index": 0, "density": 0.19, "error": 0.3}
    (row,) = at_targets([member], [under, over], [0.2])
    assert row["magnitude"] is under
    global_curve = [dict(p, method="global") for p in (under, over)]
    (row,) = at_targets([member], global_curve, [0.2])
    assert row["magnitude"]["density"] == 0.2009


def test_the_pick_on_the_error_is_the_lowest_held_out_error_and_says_so(finished):
    from masksearch.report import _held_out_section, held_out_picks

    run, _, problem = finished
    results = run.read_results()
    targets = list(problem.densities)
    held_out = held_out_picks(run, results, problem, targets, pick="held-out-error")
    assert held_out["pick"] == "held-out-error"
    members, masks = json.loads(run.front.read_text())["members"], load_masks(run.masks)[1]
    for pick in held_out["picks"]:
        within = [
            m["index"]
            for m in members
            if masks[m["index"]].sum() <= round(pick["target"] * masks.shape[1])
        ]
        errors = {
            index: 1.0
            - evaluate(
                Mask.from_flat(problem.layout, masks[index]).apply(copy.deepcopy(problem.model)),
                problem.held_out_data,
            ).accuracy
            for index in within
        }
        # the lowest error; of equals, the first row of the stored masks
        best = min(errors, key=lambda index: (errors[index], index))
        assert pick["source"] == "front" and pick["index"] == best
    text = " ".join(_held_out_section(held_out, has_test=True))
    assert "with the lowest 0/1 error on the 150 validation images" in text
    assert "--pick held-out-error` exports" in text
    plain = " ".join(_held_out_section({**held_out, "pick": "held-out"}, has_test=True))
    assert "with the lowest loss on the 150" in plain and "--pick held-out` exports" in plain
