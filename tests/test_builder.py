"""The one run builder: settings in, the same search the pieces make by hand out."""

from __future__ import annotations

import json

import numpy as np
import pytest

import masksearch as ms
from masksearch import catalogue
from masksearch.builder import build_run, complete_settings, fingerprint
from masksearch.cli import main
from masksearch.rundir import load_masks
from masksearch.settings import UserError

SMALL = {
    "problem": "digits_mlp",
    "solver": "nsga2",
    "pop_size": 16,
    "budget": 64,
    "seed": 1,
    "local_search": "none",
    "init": ["magnitude"],
}


def test_a_built_run_searches_as_the_pieces_built_by_hand() -> None:
    run = build_run(SMALL)
    built = run.search()
    problem = catalogue.digits_mlp()
    by_hand = ms.search(problem, ms.make_solver("nsga2", pop_size=16), budget=64, seed=1)
    assert built.n_evals == by_hand.n_evals
    np.testing.assert_array_equal(built.front.genomes, by_hand.front.genomes)
    np.testing.assert_array_equal(built.front.F, by_hand.front.F)


def test_settings_are_resolved_for_the_problem() -> None:
    weights = build_run({**SMALL, "local_search": "auto", "init": None})
    assert weights.settings["local_search"] == "gradient-swaps"
    assert isinstance(weights.local_search, ms.GradientSwaps)
    assert weights.settings["init"] == ["magnitude", "supermask-path"]  # it has training data
    assert weights.settings["densities"] == list(catalogue.CATALOGUE["digits_mlp"].densities)
    levels = build_run({**SMALL, "local_search": "auto", "encoding": "levels"})
    assert levels.settings["local_search"] == "none" and levels.local_search is None
    pool = complete_settings({"problem": "digits_mlp", "encoding": "pool"})
    assert pool["encoding_options"]["density"] == catalogue.CATALOGUE["digits_mlp"].densities[0]


def test_deap_and_evopress_receive_pop_size_under_their_own_names() -> None:
    assert build_run({**SMALL, "solver": "deap-nsga2"}).solver.mu == 16
    assert build_run({**SMALL, "solver": "evopress"}).solver.lambda_ == 16


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"solver": "nsga4"}, "unknown solver 'nsga4'"),
        ({"encoding": "bits"}, "unknown encoding 'bits'"),
        ({"objectives": ["error", "sparsity"]}, "unknown objective 'sparsity'"),
        ({"local_search": "swap"}, "unknown local search 'swap'"),
        ({"pop_size": 1}, "pop_size must be a whole number >= 2"),
        ({"densities": [0.1, 1.5]}, "in (0, 1]"),
        ({"workers": 2, "scheduler": "tcp://x:1"}, "not both"),
        ({"color": "red"}, "unknown setting 'color'"),
        ({"repair_steps": -1}, "repair_steps must be a whole number >= 0"),
        ({"init_later_epochs": 0}, "init_later_epochs must be a positive number"),
        ({"init_later_epochs": "2,x"}, "init_later_epochs must be a positive number"),
        ({"init_later_epochs": 2}, "add supermask-path to --init"),
        (
            {"init": ["magnitude", "supermask-path"], "init_later_epochs": "2,1,1"},
            "3 epoch counts for 2 target(s) after the densest",
        ),
        ({"init_options": ["lr=0.02"]}, "'lr' is taken by none of the methods named"),
        (
            {"init": ["supermask-path"], "init_options": ["lr_schedule='cos'"]},
            "--init-option: lr_schedule must be one of constant, cosine, got 'cos'",
        ),
        ({"init": ["supermask"], "init_options": ["lr=-1"]}, "--init-option: lr must be"),
        (
            {"init": ["supermask-path"], "init_options": ["branch_epochs=4,2"]},
            "--init-option branch_epochs=[4,2,0]",
        ),
        (
            {"init": ["supermask-path"], "init_options": ["branch_epochs=[4, 2]"]},
            "branch_epochs gives 2 epoch counts for 3 target(s)",
        ),
        (
            {"init": ["supermask"], "init_options": ["epochs=3"]},
            "--init-option: give epochs as its own setting (warm_start(epochs=...), --init-epochs)",
        ),
    ],
)
def test_a_wrong_setting_is_one_clear_error(change, fragment) -> None:
    with pytest.raises(UserError) as raised:
        build_run({**SMALL, **change})
    assert fragment in str(raised.value)


def test_a_repair_aware_run_scores_every_mask_after_its_repair(tmp_path) -> None:
    run = build_run({**SMALL, "repair_steps": 2, "budget": 32})
    assert isinstance(run.problem.evaluator, ms.evaluators.RepairedEvaluator)
    assert run.settings["repair_steps"] == 2
    result = run.search(out=tmp_path / "run")
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["repair_steps"] == 2
    # the front's scores are the repaired ones, not the frozen weights'
    frozen = build_run(SMALL).problem.evaluate(result.front.genomes).F
    repaired = run.problem.evaluate(result.front.genomes).F
    np.testing.assert_array_equal(result.front.F, repaired)
    assert not np.array_equal(result.front.F[:, 0], frozen[:, 0])
    # resuming it rebuilds the same repair from config.json
    assert main(["run", "--resume", str(tmp_path / "run"), "--budget", "48", "--quiet"]) == 0
    assert main(["run", "--resume", str(tmp_path / "run"), "--repair-steps", "3"]) == 2


def test_fingerprint_tells_searches_apart() -> None:
    assert fingerprint(SMALL) == fingerprint(dict(SMALL))
    assert fingerprint(SMALL) != fingerprint({**SMALL, "seed": 2})
    training = {**SMALL, "fitness_split": "train", "train_samples": 300}
    assert fingerprint(training) != fingerprint(SMALL)
    assert fingerprint(training) != fingerprint({**training, "train_samples": 200})
    # a checkpoint written before the fitness split existed still resumes at its defaults
    assert fingerprint({**SMALL, "fitness_split": "val", "train_samples": None}) == fingerprint(
        SMALL
    )
    # nor did the density cap: no cap is the run it was
    assert fingerprint({**SMALL, "max_density": None}) == fingerprint(SMALL)
    assert fingerprint({**SMALL, "max_density": 0.1}) != fingerprint(SMALL)


def test_search_into_a_directory_makes_a_run_report_and_export_read(tmp_path) -> None:
    out = tmp_path / "run"
    run = build_run(SMALL)
    result = run.search(out=out)
    config = json.loads((out / "config.json").read_text())
    assert config["problem"] == "digits_mlp" and config["solver"] == "nsga2"
    assert len((out / "log.jsonl").read_text().splitlines()) == len(result.history)
    members = json.loads((out / "front.json").read_text())["members"]
    assert len(members) == len(result.front)
    assert main(["report", str(out)]) == 0
    assert main(["export", str(out), "--member", "0", "--out", str(tmp_path / "m.pt")]) == 0
    # the masks the search began from are kept for export --pick held-out: here the
    # magnitude masks at the targets
    _, seeds = load_masks(out / "seeds.npz")
    assert len(seeds) == result.warm_start["n_genomes"]
    np.testing.assert_array_equal(
        seeds, run.problem.encoding.decode(run.problem.magnitude_genomes())
    )

    # an existing run is never replaced by accident; resume=True continues it
    with pytest.raises(FileExistsError, match="resume=True"):
        build_run(SMALL).search(out=out)
    resumed = build_run(SMALL).search(out=out, resume=True)
    np.testing.assert_array_equal(resumed.front.F, result.front.F)
    assert resumed.n_evals == result.n_evals


def test_a_run_directory_from_python_records_its_settings_before_it_searches(tmp_path) -> None:
    out = tmp_path / "run"
    seen = []

    def look(record) -> None:
        seen.append(json.loads((out / "config.json").read_text()))

    build_run(SMALL).search(out=out, callbacks=[look])
    assert seen and all(config["solver"] == "nsga2" for config in seen)
    assert "nsga2" in (out / "report.md").read_text()  # the report knows the solver


def test_a_saved_run_is_never_resumed_from_zero_over_its_results(tmp_path) -> None:
    problem = catalogue.digits_mlp()
    result = ms.search(problem, ms.make_solver("nsga2", pop_size=16), budget=32, seed=0)
    out = tmp_path / "saved"
    (out).mkdir()
    (out / "checkpoint.pkl").write_bytes(b"a checkpoint of some earlier search")
    ms.save_run(out, result, problem)
    assert not (out / "checkpoint.pkl").exists()  # it belonged to the search replaced
    front = (out / "front.json").read_bytes()
    with pytest.raises(FileExistsError, match="no checkpoint"):
        ms.search(problem, ms.make_solver("nsga2", pop_size=16), budget=32, out=out, resume=True)
    assert (out / "front.json").read_bytes() == front


def test_a_pool_run_saved_from_python_is_reported_with_its_encoding_options(tmp_path) -> None:
    problem = catalogue.get("digits_mlp", encoding="pool", encoding_options={"density": 0.1})
    result = ms.search(problem, ms.make_solver("nsga2", pop_size=16), budget=32, seed=0)
    ms.save_run(tmp_path / "pool", result, problem)
    config = json.loads((tmp_path / "pool" / "config.json").read_text())
    assert config["encoding_options"]["density"] == 0.1
    assert main(["report", str(tmp_path / "pool")]) == 0


def test_a_misspelt_warm_start_fails_before_anything_is_built() -> None:
    with pytest.raises(UserError, match="unknown warm start 'supermaks'"):
        complete_settings({**SMALL, "init": ["magnitude", "supermaks"]})


def test_later_epochs_reach_the_supermask_path_seeds() -> None:
    from masksearch.methods import SupermaskPath

    run = build_run(
        {**SMALL, "init": ["magnitude", "supermask-path"], "init_later_epochs": "0.5,1"}
    )
    assert run.settings["init_later_epochs"] == [0.5, 1.0]
    seeds = run.warm_start()
    # the same seeds as the method built by hand, and their cost counted
    by_hand = ms.warm_start(
        run.problem, ["magnitude", SupermaskPath(epochs=1, later_epochs=(0.5, 1), seed=1)]
    )
    np.testing.assert_array_equal(seeds.genomes, by_hand.genomes)
    assert seeds.epochs == by_hand.epochs == 2.5


def test_init_options_reach_the_seeds_and_are_fixed_on_resume(tmp_path) -> None:
    from masksearch.methods import SupermaskPath

    settings = {
        **SMALL,
        "init": ["magnitude", "supermask-path"],
        "init_options": ["lr=0.05", "lr_schedule='cosine'"],
    }
    run = build_run(settings)
    assert run.settings["init_options"] == {"lr": 0.05, "lr_schedule": "cosine"}
    by_hand = ms.warm_start(
        run.problem,
        ["magnitude", SupermaskPath(epochs=1, seed=1, lr=0.05, lr_schedule="cosine")],
    )
    np.testing.assert_array_equal(run.warm_start().genomes, by_hand.genomes)
    out = str(tmp_path / "run")
    argv = ["run", "--problem", "digits_mlp", "--budget", "32", "--pop-size", "8", "--quiet"]
    argv += ["--init", "magnitude,supermask-path", "--init-option", "lr_schedule=cosine"]
    assert main([*argv, "--out", out]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["init_options"] == {"lr_schedule": "cosine"}
    changed = [*argv[:-1], "lr_schedule='constant'", "--out", out, "--resume", "--budget", "48"]
    assert main(changed) == 2  # a resumed run keeps the seeds' recipe


def test_branch_epochs_reach_the_seeds_as_a_list_from_the_command_line(tmp_path) -> None:
    from masksearch.methods import SupermaskPath

    settings = {
        **SMALL,
        "init": ["magnitude", "supermask-path"],
        "init_options": ["branch_epochs=[1, 0, 0]"],
    }
    run = build_run(settings)
    seeds = run.warm_start()
    by_hand = ms.warm_start(
        run.problem, ["magnitude", SupermaskPath(epochs=1, seed=1, branch_epochs=(1, 0, 0))]
    )
    np.testing.assert_array_equal(seeds.genomes, by_hand.genomes)
    plain = ms.warm_start(run.problem, ["magnitude", SupermaskPath(epochs=1, seed=1)])
    assert not np.array_equal(seeds.genomes, plain.genomes)
    assert seeds.epochs == plain.epochs + 1  # the branch's epoch is counted in the cost
