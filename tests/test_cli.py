"""The ``masksearch`` command driven as a user drives it: subprocesses on the digits problem.

The missing-dataset case uses ``resnet20_cifar10`` with ``--data-root`` pointing at an empty
folder: CIFAR-10 has no system-wide install location, so nothing else can supply it, exactly as
on a machine without the data.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from masksearch import data, models
from masksearch.catalogue import get as get_problem
from masksearch.cli import build_parser, main
from masksearch.mask import Mask
from masksearch.rundir import load_masks
from masksearch.training import evaluate

# a small search: 8 generations of 40 on digits, a few seconds
# the mechanics below count evaluations per generation exactly: no local search in them
SEARCH = [
    "--problem", "digits_mlp", "--pop-size", "40", "--budget", "320", "--seed", "3",
    "--local-search", "none",
]  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    environment = dict(os.environ)
    environment["MASKSEARCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    environment.pop("MASKSEARCH_DATA", None)
    environment.pop("MASKSEARCH_DEBUG", None)
    return environment


def masksearch(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "masksearch", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def assert_user_error(completed: subprocess.CompletedProcess, *fragments: str) -> None:
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert lines[-1].startswith("masksearch: error: ")
    assert sum(line.startswith("masksearch: error") for line in lines) == 1
    for fragment in fragments:
        assert fragment in lines[-1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """An uninterrupted run, then its report."""
    out = tmp_path_factory.mktemp("runs") / "reference"
    completed = masksearch("run", *SEARCH, "--out", str(out), "--json", env=env)
    assert completed.returncode == 0, completed.stderr
    return out, completed


def front_of(out: Path) -> tuple[list[dict], np.ndarray]:
    front = json.loads((out / "front.json").read_text())
    _, masks = load_masks(out / "masks.npz")
    return front["members"], masks


def test_run_writes_the_run_directory_and_reports_progress(reference):
    out, completed = reference
    events = [json.loads(line) for line in completed.stdout.splitlines()]
    generations = [e for e in events if e["event"] == "generation"]
    assert [e["n_evals"] for e in generations] == list(range(40, 321, 40))
    assert events[-1]["event"] == "done" and events[-1]["n_evals"] == 320
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [entry["n_evals"] for entry in log] == [e["n_evals"] for e in generations]
    config = json.loads((out / "config.json").read_text())
    assert config["problem"] == "digits_mlp" and config["pop_size"] == 40
    environment = json.loads((out / "environment.json").read_text())
    assert environment["seed"] == 3 and environment["versions"]["torch"] == torch.__version__
    members, masks = front_of(out)
    assert len(members) == len(masks) == events[-1]["front_size"] > 0
    for path in ("report.md", "front.png", "hypervolume.png", "history.json", "checkpoint.pkl"):
        assert (out / path).exists(), path


def test_report_then_export_gives_the_front_members_model(reference, env, tmp_path):
    out, _ = reference
    (out / "report.md").unlink()
    completed = masksearch("report", str(out), env=env)
    assert completed.returncode == 0, completed.stderr
    assert "Pareto front" in (out / "report.md").read_text()

    members, masks = front_of(out)
    target = float(np.median([m["density"] for m in members]))
    exported = tmp_path / "model.pt"
    completed = masksearch(
        "export", str(out), "--max-density", str(target), "--out", str(exported), env=env
    )
    assert completed.returncode == 0, completed.stderr
    within = [m for m in members if m["density"] <= target]
    chosen = min(within, key=lambda m: m["error"])

    model = models.build("digits_mlp")
    Mask.ones(model).to_prune(model)
    model.load_state_dict(torch.load(exported))
    mask = Mask.from_pruned(model)
    assert mask.density == pytest.approx(chosen["density"])
    np.testing.assert_array_equal(mask.flat(), masks[chosen["index"]])
    accuracy = evaluate(model, data.load("digits").test).accuracy
    # the forward pass ran through the prune hooks: the effective weights are masked
    assert bool((model.fc1.weight[~mask.tensors["fc1.weight"]] == 0).all())
    assert accuracy == pytest.approx(chosen["test_accuracy"], abs=1e-12)


def held_out_losses(
    problem, masks: np.ndarray, target: float, objective: str = "loss"
) -> dict[int, float]:
    """Each mask's loss (or 0/1 error) on digits' whole validation split (the images a fitness
    on training images never judged), by a plain pruned copy of the dense model: the rows
    within ``target``."""
    validation = data.load("digits").val
    losses = {}
    for row, flat in enumerate(masks):
        if flat.sum() <= round(target * flat.size):
            pruned = Mask.from_flat(problem.layout, flat).apply(copy.deepcopy(problem.model))
            scores = evaluate(pruned, validation)
            losses[row] = scores.loss if objective == "loss" else 1.0 - scores.accuracy
    return losses


def exported_mask(path: Path) -> np.ndarray:
    model = models.build("digits_mlp")
    Mask.ones(model).to_prune(model)
    model.load_state_dict(torch.load(path))
    return Mask.from_pruned(model).flat()


def test_export_pick_held_out_chooses_on_images_the_search_never_judged(tmp_path, capsys):
    out = tmp_path / "train-fitness"
    flags = ["--problem", "digits_mlp", "--pop-size", "8", "--budget", "40", "--init"]
    flags += ["magnitude", "--fitness-split", "train", "--train-samples", "300", "--out", str(out)]
    assert main(["run", *flags]) == 0
    assert "--pick held-out" in capsys.readouterr().out  # the summary says how to use them
    # the seeds the search began from, the magnitude masks, are stored beside the front
    problem = get_problem("digits_mlp", fitness_split="train", train_samples=300)
    _, seeds = load_masks(out / "seeds.npz")
    np.testing.assert_array_equal(seeds, problem.encoding.decode(problem.magnitude_genomes()))
    stored = (out / "seeds.npz").read_bytes()
    assert main(["run", "--resume", str(out), "--budget", "56", "--quiet"]) == 0
    assert (out / "seeds.npz").read_bytes() == stored  # a resumed run keeps its seeds
    members, masks = front_of(out)
    candidates = np.concatenate([masks, seeds])
    target = 0.1
    losses = held_out_losses(problem, candidates, target)
    best = min(losses, key=losses.get)
    # the searched masks beat the magnitude seeds on images they were never judged on
    assert best < len(masks)

    # the report shows the choice the export makes with the default margin
    (report_pick,) = [
        pick
        for pick in json.loads((out / "report.json").read_text())["held_out"]["picks"]
        if pick["target"] == target
    ]
    assert report_pick["source"] == "front" and report_pick["index"] == best

    argv = ["export", str(out), "--max-density", str(target), "--pick", "held-out"]
    for margin in ("0", "2"):  # the lowest held-out loss; the default guard lets it through
        exported = tmp_path / f"margin{margin}.pt"
        assert main([*argv, "--margin", margin, "--json", "--out", str(exported)]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["pick"] == "held-out" and summary["member"] == best
        assert summary["candidates"] == {"front": len(masks), "seeds": len(seeds)}
        np.testing.assert_array_equal(exported_mask(exported), candidates[best])
    # a margin no member can pass keeps the best seed, and says so
    exported = tmp_path / "seed.pt"
    assert main([*argv, "--margin", "1e9", "--json", "--out", str(exported)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    seed_losses = {row: loss for row, loss in losses.items() if row >= len(masks)}
    best_seed = min(seed_losses, key=seed_losses.get)
    assert summary["member"] is None and summary["warm_start_seed"] == best_seed - len(masks)
    np.testing.assert_array_equal(exported_mask(exported), candidates[best_seed])
    assert summary["density"] == pytest.approx(candidates[best_seed].mean())
    assert main([*argv, "--margin", "1e9", "--out", str(exported)]) == 0
    printed = capsys.readouterr()
    assert f"exported warm-start seed #{best_seed - len(masks)}" in printed.out
    assert "no front member beat it by 1e+09 standard errors" in printed.err
    # nothing that sparse among the candidates: refused with what to change
    assert main(["export", str(out), "--max-density", "0.001", "--pick", "held-out", "--out",
                 str(tmp_path / "none.pt")]) == 2  # fmt: skip
    assert "Raise --max-density" in capsys.readouterr().err

    # on the 0/1 error instead: the candidate with the lowest held-out error (the first of
    # equals), a front member only where its error is lower than the best seed's (margin 0),
    # and with a margin nothing passes, the seed with the lowest error
    errors = held_out_losses(problem, candidates, target, objective="error")

    def first_lowest(rows: list[int]) -> int:
        return min(rows, key=lambda row: (errors[row], row))

    best_seed = first_lowest([row for row in errors if row >= len(masks)])
    best_any = first_lowest(list(errors))
    lowest = best_any if errors[best_any] < errors[best_seed] else best_seed
    on_error = ["export", str(out), "--max-density", str(target), "--pick", "held-out-error"]
    for margin, expected in (("0", lowest), ("1e9", best_seed)):
        exported = tmp_path / f"error{margin}.pt"
        assert main([*on_error, "--margin", margin, "--json", "--out", str(exported)]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["pick"] == "held-out-error"
        np.testing.assert_array_equal(exported_mask(exported), candidates[expected])
    assert main([*on_error, "--out", str(tmp_path / "error.pt")]) == 0
    assert "held-out pick on the error of" in capsys.readouterr().err

    # a run without seeds.npz (saved by ms.save_run): the front's members only, with a note
    (out / "seeds.npz").unlink()
    exported = tmp_path / "front.pt"
    assert main([*argv, "--margin", "0", "--out", str(exported)]) == 0
    assert "choosing among the front's members only" in capsys.readouterr().err
    np.testing.assert_array_equal(exported_mask(exported), masks[best])


def test_export_pick_held_out_refuses_what_it_cannot_do(reference, tmp_path, capsys):
    out, _ = reference  # judged on every validation image: none left to choose on
    argv = ["export", str(out), "--out", str(tmp_path / "m.pt")]
    capsys.readouterr()
    assert main([*argv, "--max-density", "0.3", "--pick", "held-out"]) == 2
    assert "--val-samples N" in capsys.readouterr().err
    assert main([*argv, "--max-density", "0.3", "--pick", "best"]) == 2
    assert "--pick must be fitness, held-out or held-out-error" in capsys.readouterr().err
    assert main([*argv, "--member", "0", "--pick", "held-out"]) == 2
    assert "drop --member" in capsys.readouterr().err
    assert main([*argv, "--max-density", "0.3", "--pick", "held-out", "--margin", "-1"]) == 2
    assert "--margin is a number of standard errors >= 0" in capsys.readouterr().err
    assert main([*argv, "--max-density", "0.3", "--margin", "1"]) == 2
    assert "--margin applies to --pick held-out (or held-out-error) only" in capsys.readouterr().err
    assert main([*argv, "--member", "0", "--pick", "held-out-error"]) == 2
    assert "--pick held-out-error chooses among the masks at --max-density" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "m.pt").exists()


def wait_for_generations(process: subprocess.Popen, log: Path, count: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= count:
            return
        assert process.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    raise AssertionError("the run did not reach the wanted generation in time")


def assert_same_metrics(members: list[dict], expected: list[dict]) -> None:
    """Counts (error, accuracy, density) exactly; losses to float rounding.

    The incremental evaluator's parent cache is not checkpointed, so after a resume a child may
    be computed from another parent (or from scratch): the same logits up to summation order.
    """
    assert len(members) == len(expected)
    for member, reference in zip(members, expected, strict=True):
        assert set(member) == set(reference)
        for key, value in reference.items():
            if key.endswith("loss"):
                assert member[key] == pytest.approx(value, rel=1e-6), key
            else:
                assert member[key] == value, key


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_resume_after_a_kill_reaches_the_uninterrupted_front(reference, env, tmp_path, stop):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "masksearch", "run", *SEARCH, "--out", str(out), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_generations(process, out / "log.jsonl", 3)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    generations_before = len((out / "log.jsonl").read_text().splitlines())
    assert generations_before < 8, "the run finished before the signal"
    if stop == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
        assert not (out / "front.json").exists()
    else:  # Ctrl-C: stops after a checkpoint and still writes results
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert (out / "front.json").exists() and (out / "report.md").exists()

    completed = masksearch("run", "--resume", str(out), "--quiet", env=env)
    assert completed.returncode == 0, completed.stderr
    members, masks = front_of(out)
    expected_members, expected_masks = front_of(reference[0])
    np.testing.assert_array_equal(masks, expected_masks)
    assert_same_metrics(members, expected_members)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [entry["n_evals"] for entry in log][-1] == 320


def test_corrupt_checkpoint(reference, env, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(reference[0], out)
    (out / "checkpoint.pkl").write_bytes(b"\x80\x05garbage")
    assert_user_error(
        masksearch("run", "--resume", str(out), "--budget", "400", env=env), "damaged"
    )


def test_unknown_problem(tmp_path, capsys):
    # in-process (start-up costs seconds): main() returns the exit status the script exits with
    assert main(["run", "--problem", "mnist_resnet", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("masksearch: error: ") and "\n" not in error
    assert "mnist_resnet" in error and "digits_mlp" in error


def test_bad_config_value(tmp_path, capsys):
    config = tmp_path / "search.toml"
    config.write_text('problem = "digits_mlp"\nbudget = "lots"\n')
    assert main(["run", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("masksearch: error: ") and "\n" not in error
    assert "budget" in error and "lots" in error


def test_missing_dataset(env, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    completed = masksearch(
        "run", "--problem", "resnet20_cifar10", "--data-root", str(empty), env=env
    )
    assert_user_error(completed, "CIFAR-10 not found", str(empty), "--data-root")


# in-process checks (no interpreter start-up): help texts, config precedence, resume guard


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    assert set(commands) == {"problems", "run", "report", "export"}
    for name, command in commands.items():
        for action in command._actions:  # noqa: SLF001
            assert action.help, f"masksearch {name} {action.option_strings} has no help"


def test_flags_override_the_config_file(tmp_path, capsys):
    from masksearch.cli import resolve_run_config

    config = tmp_path / "search.toml"
    config.write_text('problem = "digits_mlp"\nbudget = 50\nseed = 4\n[solver_options]\nx = 1\n')
    args = build_parser().parse_args(["run", str(config), "--budget", "70"])
    resolved, resume = resolve_run_config(args)
    assert (resolved["budget"], resolved["seed"], resolved["solver_options"]) == (70, 4, {"x": 1})
    assert not resume


def test_resuming_with_other_settings_is_refused(reference, capsys):
    assert main(["run", "--resume", str(reference[0]), "--seed", "9"]) == 2
    error = capsys.readouterr().err
    assert "cannot resume" in error and "seed 3 -> 9" in error


def test_an_existing_run_is_not_overwritten_by_accident(reference, capsys):
    assert main(["run", *SEARCH, "--out", str(reference[0])]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("solver", "attribute"), [("nsga2", "pop_size"), ("deap-nsga2", "mu"), ("evopress", "lambda_")]
)
def test_pop_size_reaches_every_solver_under_its_own_name(solver, attribute):
    from masksearch.cli import build_solver

    assert getattr(build_solver({"solver": solver, "pop_size": 12}), attribute) == 12


def test_workers_wrap_the_evaluator_in_joblib():
    from masksearch.cli import build_problem, parallel_evaluator
    from masksearch.evaluators import JoblibEvaluator

    problem = build_problem({"problem": "digits_mlp", "val_samples": 50})
    inner = problem.evaluator
    parallel_evaluator(problem, {"workers": 2})
    assert isinstance(problem.evaluator, JoblibEvaluator) and problem.evaluator.n_jobs == 2
    assert problem.evaluator.layout == inner.layout


def test_local_search_flag_runs_and_is_part_of_the_fingerprint(tmp_path, capsys):
    out = tmp_path / "memetic"
    common = ["--problem", "digits_mlp", "--pop-size", "8", "--seed", "1", "--out", str(out)]
    flags = [*common, "--budget", "60", "--local-search", "gradient-swaps", "--quiet"]
    assert main(["run", *flags]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["local_search"] == "gradient-swaps"
    assert json.loads((out / "front.json").read_text())["members"]
    # resuming without the local search would change the search: refused
    assert main(["run", "--resume", str(out), "--local-search", "none"]) == 2
    assert "local_search" in capsys.readouterr().err


def test_fitness_split_flag_runs_on_training_images_and_is_part_of_the_fingerprint(
    tmp_path, capsys
):
    out = tmp_path / "train-fitness"
    flags = ["--problem", "digits_mlp", "--pop-size", "8", "--budget", "24", "--quiet"]
    flags += ["--init", "magnitude", "--out", str(out)]
    assert main(["run", *flags, "--fitness-split", "train", "--train-samples", "300"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["fitness_split"] == "train" and config["train_samples"] == 300
    assert "val_samples" not in config
    assert "Val = the training images" in (out / "report.md").read_text()
    # the stored settings rebuild the same problem: resuming goes on, on the same images
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--budget", "40"]) == 0
    assert "train accuracy" in capsys.readouterr().out  # the summary names what it measured
    assert main(["run", "--resume", str(out), "--fitness-split", "val", "--budget", "56"]) == 2
    assert "fitness_split" in capsys.readouterr().err
    assert main(["run", *flags[:-1], str(tmp_path / "b"), "--fitness-split", "test"]) == 2
    assert "--fitness-split must be val (validation images) or train" in capsys.readouterr().err
    assert main(["run", *flags[:-1], str(tmp_path / "c"), "--train-samples", "300"]) == 2
    assert "give val_samples, or fitness_split='train'" in capsys.readouterr().err


def test_label_smoothing_flag_smooths_the_loss_and_is_part_of_the_fingerprint(tmp_path, capsys):
    out = tmp_path / "smoothed"
    flags = ["--problem", "digits_mlp", "--pop-size", "8", "--budget", "24", "--quiet"]
    flags += ["--init", "magnitude", "--objectives", "loss,density", "--out"]
    assert main(["run", *flags, str(out), "--label-smoothing", "0.2"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["label_smoothing"] == 0.2
    # the front's losses are the smoothed ones, as a masked forward pass gives them by hand
    members = json.loads((out / "front.json").read_text())["members"]
    layout, masks = load_masks(out / "masks.npz")
    problem = get_problem("digits_mlp")
    for member in members[:3]:
        model = Mask.from_flat(layout, masks[member["index"]]).apply(copy.deepcopy(problem.model))
        with torch.no_grad():
            log_p = torch.log_softmax(model(problem.data.x).double(), dim=1)
        label = -log_p.gather(1, problem.data.y.view(-1, 1)).squeeze(1)
        expected = float((0.8 * label - 0.2 * log_p.mean(dim=1)).mean())
        assert member["loss"] == pytest.approx(expected, abs=2e-6)
    assert "label-smoothed (ε = 0.2)" in (out / "report.md").read_text()
    # another smoothing is another search: refused on resume
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--label-smoothing", "0", "--budget", "40"]) == 2
    assert "label_smoothing" in capsys.readouterr().err
    assert main(["run", *flags, str(tmp_path / "b"), "--label-smoothing", "1"]) == 2
    assert "--label-smoothing must be a number in [0, 1)" in capsys.readouterr().err


def test_max_density_flag_keeps_the_front_at_the_targets_and_is_part_of_the_fingerprint(
    tmp_path, capsys
):
    flags = ["--problem", "digits_mlp", "--pop-size", "8", "--budget", "40", "--quiet"]
    flags += ["--init", "magnitude", "--densities", "0.1,0.05", "--out"]

    def densest(out) -> float:
        members = json.loads((out / "front.json").read_text())["members"]
        return max(member["density"] for member in members)

    # uncapped, the same search's front reaches far denser masks than the cap
    assert main(["run", *flags, str(tmp_path / "free")]) == 0
    assert densest(tmp_path / "free") > 0.2
    out = tmp_path / "capped"
    assert main(["run", *flags, str(out), "--max-density", "0.12"]) == 0
    assert json.loads((out / "config.json").read_text())["max_density"] == 0.12
    assert densest(out) <= 0.12
    # the stored cap rebuilds the same problem; another cap is another search: refused
    assert main(["run", "--resume", str(out), "--budget", "56"]) == 0
    assert densest(out) <= 0.12
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--max-density", "0.2", "--budget", "72"]) == 2
    assert "max_density" in capsys.readouterr().err
    assert main(["run", *flags, str(tmp_path / "b"), "--max-density", "1.5"]) == 2
    assert "--max-density must be in (0, 1]" in capsys.readouterr().err
    # below a target density nothing there could be feasible: refused before any work
    assert main(["run", *flags, str(tmp_path / "c"), "--max-density", "0.07"]) == 2
    assert "max_density 0.07 is below the target density 0.1" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_local_search_needs_the_weights_encoding(tmp_path, capsys):
    flags = ["--problem", "digits_mlp", "--encoding", "levels", "--budget", "20"]
    assert main(["run", *flags, "--local-search", "gradient-swaps", "--out", str(tmp_path)]) == 2
    assert "--encoding weights" in capsys.readouterr().err
    assert main(["run", "--problem", "digits_mlp", "--local-search", "tabu"]) == 2
    assert "gradient-swaps" in capsys.readouterr().err


def test_auto_local_search_follows_the_encoding():
    from masksearch.cli import build_problem, local_search_choice

    weights = build_problem({"problem": "digits_mlp", "val_samples": 50})
    levels = build_problem({"problem": "digits_mlp", "val_samples": 50, "encoding": "levels"})
    assert local_search_choice({}, weights) == "gradient-swaps"
    assert local_search_choice({"local_search": "auto"}, levels) == "none"
    assert local_search_choice({"local_search": "none"}, weights) == "none"


# -- issue 17: nothing lost, every result consistent, one clear line for bad input -------------


def _copy_of(reference, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(reference[0], out)
    return out


def test_overwrite_checks_every_setting_before_deleting_the_old_results(
    reference, tmp_path, capsys
):
    out = _copy_of(reference, tmp_path)
    before = (out / "front.json").read_bytes()
    code = main(["run", *SEARCH, "--out", str(out), "--overwrite", "--solver-option", "pop_sise=8"])
    assert code == 2
    assert "pop_sise" in capsys.readouterr().err
    assert (out / "front.json").read_bytes() == before
    assert (out / "checkpoint.pkl").exists()


def test_resume_without_its_checkpoint_is_refused_and_keeps_the_results(
    reference, tmp_path, capsys
):
    out = _copy_of(reference, tmp_path)
    (out / "checkpoint.pkl").unlink()
    before = (out / "front.json").read_bytes()
    assert main(["run", "--resume", str(out), "--budget", "640"]) == 2
    error = capsys.readouterr().err
    assert "checkpoint" in error and "--overwrite" in error
    assert (out / "front.json").read_bytes() == before


def test_a_second_writer_is_refused_with_the_holders_pid(reference, tmp_path, capsys):
    from masksearch.rundir import RunDir

    out = _copy_of(reference, tmp_path)
    with RunDir(out).lock():
        assert main(["run", "--resume", str(out), "--budget", "640"]) == 2
        error = capsys.readouterr().err
        assert f"PID {os.getpid()}" in error and "in use" in error
        assert main(["report", str(out)]) == 2
    # released: the lock never outlives its holder
    with RunDir(out).lock():
        pass


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert main(["run", *SEARCH, "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_config_path_that_is_a_directory(tmp_path, capsys):
    assert main(["run", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_export_refuses_a_directory_as_out_and_densities_above_one(reference, tmp_path, capsys):
    assert main(["export", str(reference[0]), "--member", "0", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    model = tmp_path / "m.pt"
    assert main(["export", str(reference[0]), "--max-density", "2", "--out", str(model)]) == 2
    assert "(0, 1]" in capsys.readouterr().err
    assert not model.exists()


def test_hand_edited_front_member_without_density(reference, tmp_path, capsys):
    out = _copy_of(reference, tmp_path)
    front = json.loads((out / "front.json").read_text())
    del front["members"][1]["density"]
    (out / "front.json").write_text(json.dumps(front))
    export = ["export", str(out), "--member", "0", "--out", str(tmp_path / "m.pt")]
    for command in (export, ["report", str(out)]):
        assert main(command) == 2
        error = capsys.readouterr().err
        assert "member 1" in error and "'density'" in error and "--resume" in error


def test_masks_that_do_not_match_the_front_are_never_exported(reference, tmp_path, capsys):
    """A kill between masks.npz and front.json leaves new masks beside the old front."""
    from masksearch.mask import Layout
    from masksearch.rundir import save_masks

    out = _copy_of(reference, tmp_path)
    layout, masks = load_masks(out / "masks.npz")
    save_masks(out / "masks.npz", Layout(layout.names, layout.shapes), masks[::-1])
    model = tmp_path / "m.pt"
    assert main(["export", str(out), "--max-density", "0.5", "--out", str(model)]) == 2
    error = capsys.readouterr().err
    assert "does not match" in error and f"masksearch run --resume {out}" in error
    assert not model.exists()


def test_config_files_parse_without_tomllib(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib: the same parser comes from tomli."""
    pytest.importorskip("tomli")
    from masksearch.cli import load_toml

    config = tmp_path / "run.toml"
    config.write_text('problem = "digits_mlp"\nbudget = 10\n')
    monkeypatch.setattr(sys, "version_info", (3, 10, 0))
    monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib now fails
    assert load_toml(str(config)) == {"problem": "digits_mlp", "budget": 10}


def test_default_warm_start_is_recorded_with_its_cost(reference):
    front = json.loads((reference[0] / "front.json").read_text())
    warm = front["warm_start"]
    # supermask-path: 1 epoch at the densest target, then 1 at each of the two others
    assert warm["sources"] == ["magnitude", "supermask-path"] and warm["epochs"] == 3
    assert warm["seconds"] > 0
    config = json.loads((reference[0] / "config.json").read_text())
    assert config["init"] == ["magnitude", "supermask-path"] and config["init_epochs"] == 1
    assert "warm-start masks" in (reference[0] / "report.md").read_text()


def test_warm_start_from_an_earlier_run_and_bad_names(reference, tmp_path, capsys):
    out = tmp_path / "from-earlier"
    args = ["run", *SEARCH, "--budget", "40", "--out", str(out), "--quiet"]
    assert main([*args, "--init", f"magnitude,{reference[0]}"]) == 0
    warm = json.loads((out / "front.json").read_text())["warm_start"]
    earlier = json.loads((reference[0] / "front.json").read_text())["members"]
    assert warm["n_genomes"] >= len(earlier) and warm["epochs"] == 0
    assert main(["run", "--resume", str(out), "--init", "magnitude"]) == 2
    assert "init" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--init", "supermaks"]) == 2
    assert "unknown warm start 'supermaks'" in capsys.readouterr().err


def test_falling_back_to_digits_says_why_and_how_to_get_the_default(monkeypatch, capsys):
    from masksearch import catalogue
    from masksearch.cli import resolve_run_config

    monkeypatch.setattr(catalogue, "default_problem_name", lambda root=None: "digits_mlp")
    config, _ = resolve_run_config(build_parser().parse_args(["run"]))
    assert config["problem"] == "digits_mlp"
    note = capsys.readouterr().err
    assert "Fashion-MNIST not found" in note and "apt-get install dataset-fashion-mnist" in note
    resolve_run_config(build_parser().parse_args(["run", "--quiet"]))
    assert capsys.readouterr().err == ""


# -- a user's own problem, and runs written from Python -------------------------------------

USER_MODULE = '''
"""A user's module next to which `masksearch` is run."""
import torch
from torch import nn

import masksearch as ms


def make_problem(densities=(0.5, 0.3)):
    """Random MLP 64-16-10 on digits (seeded)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    digits = ms.load("digits")
    ms.train(model, digits.train, epochs=2, lr=0.05, seed=0)
    return ms.PruningProblem(model, digits, densities=densities, name="mine")
'''


def console_script(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """`masksearch ...` as the installed command: unlike `python -m`, it does not put the
    current directory on sys.path, so this is where a `module:function` lookup is tested."""
    script = Path(sys.executable).with_name("masksearch")
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=240
    )


def test_a_users_module_function_is_searched_reported_and_exported(tmp_path, env) -> None:
    (tmp_path / "mymodels.py").write_text(USER_MODULE)
    out = tmp_path / "run"
    search = ["--budget", "64", "--pop-size", "16", "--init", "magnitude", "--quiet"]
    completed = console_script(
        "run", "--problem", "mymodels:make_problem", *search, "--out", str(out),
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["problem"] == "mymodels:make_problem" and config["densities"] == [0.5, 0.3]
    members, masks = front_of(out)
    assert members

    # an option the function does not take is refused by name, before any search
    refused = console_script(
        "run", "--problem", "mymodels:make_problem", "--val-samples", "10", "--out",
        str(tmp_path / "other"), cwd=tmp_path, env=env,
    )  # fmt: skip
    assert_user_error(refused, "takes no 'val_samples' option")

    reported = console_script("report", str(out), cwd=tmp_path, env=env)
    assert reported.returncode == 0, reported.stderr
    assert "magnitude" in (out / "report.md").read_text()

    model_path = tmp_path / "model.pt"
    exported = console_script(
        "export", str(out), "--member", "0", "--out", str(model_path), "--json",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    state = torch.load(model_path, weights_only=True)
    kept = sum(int(v.sum()) for k, v in state.items() if k.endswith("_mask"))
    total = sum(v.numel() for k, v in state.items() if k.endswith("_mask"))
    assert kept == int(masks[members[0]["index"]].sum()) and total == masks.shape[1]

    # from elsewhere the module is not importable: one line that says where it looked
    elsewhere = console_script("report", str(out), cwd=tmp_path / "run", env=env)
    assert_user_error(elsewhere, "no module 'mymodels' in the current directory or on PYTHONPATH")


def test_report_and_export_work_on_a_run_saved_from_python(tmp_path, digits_problem) -> None:
    import masksearch as ms

    result = ms.search(digits_problem, ms.make_solver("nsga2", pop_size=16), budget=48, seed=0)
    out = tmp_path / "saved"
    ms.save_run(out, result, digits_problem)
    assert json.loads((out / "config.json").read_text())["problem"] == "digits_mlp"
    assert main(["report", str(out)]) == 0
    members, masks = front_of(out)
    assert len(members) == len(result.front)
    model_path = tmp_path / "model.pt"
    assert main(["export", str(out), "--member", "0", "--out", str(model_path)]) == 0
    state = torch.load(model_path, weights_only=True)
    kept = sum(int(v.sum()) for k, v in state.items() if k.endswith("_mask"))
    assert kept == int(masks[members[0]["index"]].sum())


def test_a_hand_built_problem_is_reported_and_exported_with_problem(
    tmp_path, digits_problem, capsys
) -> None:
    import masksearch as ms

    problem = ms.PruningProblem(
        digits_problem.model, digits_problem.data, densities=digits_problem.densities
    )
    assert problem.source is None
    result = ms.search(problem, ms.make_solver("nsga2", pop_size=16), budget=32, seed=0)
    out = tmp_path / "by-hand"
    ms.save_run(out, result, problem)
    capsys.readouterr()
    assert main(["report", str(out)]) == 0  # without a baseline, and says why
    assert "--problem" in capsys.readouterr().err
    model_path = tmp_path / "model.pt"
    assert main(["export", str(out), "--member", "0", "--out", str(model_path)]) == 2
    assert "--problem pkg.module:function" in capsys.readouterr().err
    assert not model_path.exists()
    # the same model and data as the catalogue's digits_mlp: --problem supplies them
    assert main(["export", str(out), "--member", "0", "--problem", "digits_mlp", "--out",
                 str(model_path)]) == 0  # fmt: skip
    assert model_path.exists()


def test_a_groups_run_exports_a_physically_smaller_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MASKSEARCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "groups"
    run = [
        "run", "--problem", "digits_mlp", "--encoding", "groups", "--objectives",
        "error,latency", "--pop-size", "16", "--budget", "48", "--local-search", "none",
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(run) == 0, capsys.readouterr().err
    members, masks = front_of(out)
    # measured on a tiny MLP: under load a pruned layer's microseconds can time above the
    # dense one's, so only the sign and finiteness are checked here (test_latency.py holds
    # the table to its arithmetic)
    assert all(0 < m["latency"] < float("inf") for m in members)
    small = tmp_path / "small.pt2"
    export = ["export", str(out), "--member", "0", "--structured", "--out", str(small), "--json"]
    assert main(export) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["params"] < summary["dense_params"] and small.exists()

    from masksearch.catalogue import build
    from masksearch.mask import Layout
    from masksearch.structured import masked

    problem = build("digits_mlp", encoding="groups")
    layout = Layout.of(problem.model, problem.layout.names)
    genome = problem.encoding.encode(Mask.from_flat(layout, masks[0]))
    loaded = torch.export.load(str(small)).module()
    reference = masked(problem.model, genome, problem.encoding.input_shape)
    x = problem.test_data.x[:64]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference(x), atol=1e-4, rtol=1e-4)
    assert sum(p.numel() for p in loaded.parameters()) == summary["params"]
    with torch.no_grad():  # the loaded program refuses .eval(), which evaluate() calls
        predicted = loaded(problem.test_data.x).argmax(dim=1)
    accuracy = (predicted == problem.test_data.y).float().mean().item()
    assert summary["test_accuracy"] == pytest.approx(accuracy)

    # distilled: the smaller model fine-tuned with the dense model as its teacher, as by hand
    from masksearch.structured import shrink
    from masksearch.training import train

    distilled = tmp_path / "distilled.pt2"
    export = [*export[:6], str(distilled), "--json", "--finetune", "1", "--distill"]
    assert main(export) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["distilled"] is True
    by_hand = shrink(problem.model, genome, problem.encoding.input_shape)
    train(by_hand, problem.train_data, epochs=1, lr=0.01, seed=0, teacher=problem.model)
    with torch.no_grad():
        torch.testing.assert_close(
            torch.export.load(str(distilled)).module()(x), by_hand.eval()(x), atol=1e-4, rtol=1e-4
        )


def test_structured_export_needs_a_groups_run(reference, tmp_path, capsys):
    model = tmp_path / "m.pt2"
    export = ["export", str(reference[0]), "--member", "0", "--structured", "--out", str(model)]
    assert main(export) == 2
    error = capsys.readouterr().err
    assert "--encoding groups" in error and "without --structured" in error
    assert not model.exists()


def test_a_run_seeded_with_label_smoothing_points_to_the_pick_on_the_error(tmp_path, capsys):
    out = tmp_path / "smoothed"
    flags = ["--problem", "digits_mlp", "--pop-size", "8", "--budget", "24", "--fitness-split"]
    flags += ["train", "--train-samples", "300", "--init", "magnitude,supermask-path"]
    flags += ["--init-option", "label_smoothing=0.1", "--out", str(out)]
    assert main(["run", *flags]) == 0
    printed = capsys.readouterr().out
    assert "--pick held-out-error" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["held_out"]["pick"] == "held-out-error"
    assert "--pick held-out-error` exports" in " ".join((out / "report.md").read_text().split())


def test_export_distill_fine_tunes_from_the_dense_model(tmp_path, digits_problem, capsys) -> None:
    import masksearch as ms
    from masksearch import training

    result = ms.search(digits_problem, ms.make_solver("nsga2", pop_size=16), budget=48, seed=0)
    out = tmp_path / "saved"
    ms.save_run(out, result, digits_problem)
    members, masks = front_of(out)
    export = ["export", str(out), "--member", "0", "--finetune", "1", "--json", "--out"]
    summaries = {}
    for name, extra in (("plain", []), ("distilled", ["--distill"])):
        assert main([*export, str(tmp_path / f"{name}.pt"), *extra]) == 0
        summaries[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summaries["plain"]["distilled"] is False and summaries["distilled"]["distilled"] is True
    # the same fine-tune by hand: the front member's mask, the dense model as the teacher
    mask = Mask.from_flat(digits_problem.layout, masks[members[0]["index"]])
    model = copy.deepcopy(digits_problem.model)
    training.finetune(
        model, mask, digits_problem.train_data, epochs=1, lr=0.01, seed=0,
        teacher=digits_problem.model,
    )  # fmt: skip
    mask.to_prune(model.eval())
    saved = torch.load(tmp_path / "distilled.pt", weights_only=True)
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    plain = torch.load(tmp_path / "plain.pt", weights_only=True)
    assert not torch.equal(plain["fc1.weight_orig"], saved["fc1.weight_orig"])
    # distillation is a way to fine-tune: without --finetune it is refused, readably
    assert main([*export[:4], "--out", str(tmp_path / "none.pt"), "--distill"]) == 2
    assert (
        "--distill is how the model is fine-tuned; add --finetune EPOCHS" in capsys.readouterr().err
    )


BEST_RUN = (
    "benchmarks/results/epyc-avx512/"
    "warm_start_path_e4_l2-1_br12-2-0_cos_lr0.02_bs256_ls0.1_b12288_train20000_max0.06_objls0.1.json"
)


def test_the_shipped_best_recipe_is_its_benchmark_runs_settings():
    """problems/lenet300_best.toml, as `masksearch run` resolves it, holds the settings of the
    warm_start.py run it names (its result file records them)."""
    from masksearch.cli.config import resolve_run_config

    root = Path(__file__).resolve().parent.parent
    args = build_parser().parse_args(["run", str(root / "problems/lenet300_best.toml")])
    config, resumes = resolve_run_config(args)
    measured = json.loads((root / BEST_RUN).read_text(encoding="utf-8"))
    assert not resumes
    assert config["problem"] == measured["problem"]
    assert config["solver"] == "nsga2" and config["pop_size"] == measured["pop_size"]
    assert config["budget"] == measured["budget"]
    assert list(config["objectives"]) == measured["objectives"]
    assert config["label_smoothing"] == measured["label_smoothing"]
    assert config["fitness_split"] == measured["fitness_split"]
    assert config["train_samples"] == measured["fitness_samples"]
    assert config["max_density"] == measured["max_density"]
    assert list(config["init"]) == [measured["init_method"]]
    assert config["init_epochs"] == measured["init_epochs"]
    assert list(config["init_later_epochs"]) == measured["init_later_epochs"]
    assert config["init_options"] == {
        "branch_epochs": measured["init_branch_epochs"],
        "lr": measured["init_lr"],
        "lr_schedule": measured["init_lr_schedule"],
        "batch_size": measured["init_batch_size"],
        "label_smoothing": measured["init_label_smoothing"],
    }
