from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from masksearch import catalogue
from masksearch.front import ParetoFront
from masksearch.local_search import GradientSwaps, LocalSearch, check_local_search, mask_gradient
from masksearch.search import search
from masksearch.solvers import SOLVERS, PymooSolver, make_solver


@pytest.fixture(scope="module")
def loss_problem():
    """digits with the loss as first objective (what the local search improves best)."""
    return catalogue.digits_mlp(objectives=("loss", "density"), densities=(0.1, 0.05))


def _front_of(problem, genomes) -> ParetoFront:
    front = ParetoFront(problem.objectives, problem.layout, problem.encoding.decode)
    evaluation = problem.evaluate(genomes)
    front.update(genomes, evaluation.F, evaluation.metrics)
    return front


def test_mask_gradient_is_weight_times_gradient_of_the_masked_model(loss_problem) -> None:
    problem = loss_problem
    genome = problem.magnitude_genomes()[0]
    flat = problem.encoding.decode(genome[None])[0]
    mask = problem.mask(genome)
    # independent: autograd on the pruned model's weights, then the chain rule by hand
    pruned = mask.apply(copy.deepcopy(problem.model))
    loss = F.cross_entropy(pruned(problem.data.x), problem.data.y)
    loss.backward()
    params = dict(pruned.named_parameters())
    originals = dict(problem.model.named_parameters())
    expected = np.concatenate(
        [(params[n].grad * originals[n].detach()).reshape(-1).numpy() for n in mask.names]
    )
    got = mask_gradient(problem, flat)
    assert got.shape == (problem.layout.n_total,)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    # the first-order reading holds for one kept weight: dropping it changes the loss ≈ -g
    kept = np.flatnonzero(flat)
    biggest = kept[np.argmax(np.abs(got[kept]))]
    child = genome.copy()
    child[biggest] = False
    change = problem.evaluate(child[None]).metrics["loss"][0] - loss.item()
    assert np.sign(change) == np.sign(-got[biggest])


def test_gradient_swaps_meets_the_local_search_protocol() -> None:
    swaps = GradientSwaps()
    assert isinstance(swaps, LocalSearch)
    assert check_local_search(swaps) is swaps


def test_check_local_search_names_what_is_wrong() -> None:
    class NoImprove:
        def setup(self, problem, rng):
            pass

    class ImproveTakesOne:
        def setup(self, problem, rng):
            pass

        def improve(self, front):  # search passes the problem too
            pass

    assert not isinstance(NoImprove(), LocalSearch)
    with pytest.raises(TypeError, match="got the class GradientSwaps; pass an instance"):
        check_local_search(GradientSwaps)
    with pytest.raises(TypeError, match=r"NoImprove is not a local search: it has no improve"):
        check_local_search(NoImprove())
    with pytest.raises(TypeError, match=r"ImproveTakesOne\.improve\(front\) cannot be called"):
        check_local_search(ImproveTakesOne())


def test_mask_gradient_follows_the_problems_label_smoothing() -> None:
    smoothed = catalogue.digits_mlp(objectives=("loss", "density"), label_smoothing=0.2)
    genome = smoothed.magnitude_genomes()[0]
    flat = smoothed.encoding.decode(genome[None])[0]
    pruned = smoothed.mask(genome).apply(copy.deepcopy(smoothed.model))
    # by the formula, not torch's label_smoothing: 0.8 · CE + 0.2 · mean over classes
    log_p = torch.log_softmax(pruned(smoothed.data.x), dim=1)
    label = -log_p.gather(1, smoothed.data.y.view(-1, 1)).squeeze(1)
    (0.8 * label + 0.2 * -log_p.mean(dim=1)).mean().backward()
    params = dict(pruned.named_parameters())
    originals = dict(smoothed.model.named_parameters())
    expected = np.concatenate(
        [
            (params[n].grad * originals[n].detach()).reshape(-1).numpy()
            for n in smoothed.layout.names
        ]
    )
    got = mask_gradient(smoothed, flat)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    plain = catalogue.digits_mlp(objectives=("loss", "density"))
    assert np.abs(mask_gradient(plain, flat) - got).max() > 1e-4


def test_mask_gradient_rejects_a_wrong_shape(loss_problem) -> None:
    with pytest.raises(ValueError, match="flat mask"):
        mask_gradient(loss_problem, np.ones(5, dtype=bool))


def test_children_swap_weights_and_keep_the_density(loss_problem) -> None:
    problem = loss_problem
    local = GradientSwaps(children=6)
    local.setup(problem, np.random.default_rng(0))
    genome = problem.magnitude_genomes()[1]
    children, sizes = local._children(problem, genome, key=0.05)
    assert children.shape == (6, problem.n_genes)
    assert np.all(children.sum(axis=1) == genome.sum())
    for child, size in zip(children, sizes, strict=True):
        assert np.count_nonzero(child & ~genome) == size  # added
        assert np.count_nonzero(genome & ~child) == size  # dropped


def test_improve_only_reports_better_masks_and_exact_metrics(loss_problem) -> None:
    problem = loss_problem
    local = GradientSwaps(steps=3, children=8, extra=0)
    local.setup(problem, np.random.default_rng(1))
    front = _front_of(problem, problem.magnitude_genomes())
    start_loss = {
        round(d, 3): v for d, v in zip(front.metrics["density"], front.F[:, 0], strict=True)
    }
    proposal = local.improve(problem, front)
    assert len(proposal.genomes) == 3 * 8 * 2  # steps × children × targets
    # the metrics it reports are the problem's own, recomputed independently
    again = problem.evaluate(proposal.genomes)
    np.testing.assert_allclose(proposal.evaluation.F, again.F, rtol=1e-6)
    assert len(proposal.improved) >= 1  # magnitude masks are far from locally optimal
    for row in proposal.improved:
        density = round(float(proposal.evaluation.metrics["density"][row]), 3)
        assert proposal.evaluation.F[row, 0] < start_loss[density]


def test_search_with_local_search_beats_the_magnitude_seeds(loss_problem) -> None:
    problem = loss_problem
    result = search(
        problem,
        make_solver("nsga2", pop_size=16),
        budget=240,
        seed=0,
        local_search=GradientSwaps(),
    )
    magnitude = problem.evaluate(problem.magnitude_genomes())
    for density, loss in zip(magnitude.metrics["density"], magnitude.F[:, 0], strict=True):
        position = result.front.index(max_density=density, objective="loss")
        assert result.front.metrics["loss"][position] < loss
    assert result.n_evals >= 240


def test_local_search_runs_are_deterministic_and_resume_exactly(tmp_path, loss_problem) -> None:
    def run(budget: int, **options):
        return search(
            loss_problem,
            make_solver("nsga2", pop_size=8),
            budget=budget,
            seed=2,
            local_search=GradientSwaps(steps=1, children=4),
            **options,
        )

    straight, again = run(160), run(160)
    assert np.array_equal(straight.front.genomes, again.front.genomes)
    path = tmp_path / "checkpoint.pkl"
    run(80, checkpoint=path)
    resumed = run(160, checkpoint=path, resume=True)
    assert np.array_equal(resumed.front.genomes, straight.front.genomes)
    np.testing.assert_allclose(resumed.front.F, straight.front.F, rtol=1e-6)


def test_every_shipped_solver_accepts_injected_genomes(loss_problem) -> None:
    for name in SOLVERS:
        result = search(
            loss_problem,
            make_solver(name, **({"mu": 8} if name.startswith("deap") else {"pop_size": 8})),
            budget=30,
            seed=0,
            local_search=GradientSwaps(steps=1, children=2),
        )
        assert len(result.front) >= 1, name


def test_bad_settings_and_encodings_are_refused(loss_problem) -> None:
    with pytest.raises(ValueError, match="children"):
        GradientSwaps(children=0)
    with pytest.raises(ValueError, match="steps"):
        GradientSwaps(steps=1.5)
    pool = catalogue.digits_mlp(encoding="levels")
    with pytest.raises(ValueError, match="'weights' encoding"):
        GradientSwaps().setup(pool, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="setup"):
        GradientSwaps().improve(
            loss_problem, _front_of(loss_problem, loss_problem.magnitude_genomes())
        )


def test_gradient_leaves_the_model_untouched(loss_problem) -> None:
    model = loss_problem.model
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    mask_gradient(loss_problem, np.ones(loss_problem.layout.n_total, dtype=bool))
    for name, p in model.named_parameters():
        assert p.grad is None, name  # no gradient left on the user's model
        assert torch.equal(p.detach(), before[name]), name


def test_a_stalled_search_draws_its_swaps_from_a_wider_pool(loss_problem) -> None:
    problem = loss_problem
    genome = problem.magnitude_genomes()[1]
    gradient = mask_gradient(problem, problem.encoding.decode(genome[None])[0])
    kept = np.flatnonzero(genome)
    by_score = kept[np.argsort(-gradient[kept], kind="stable")]  # best removals first
    local = GradientSwaps(children=8, candidates=8)
    local.setup(problem, np.random.default_rng(3))
    local._step_size[0.05] = 1
    for stalls, pool in ((0, 8), (3, 64)):
        local._stalls[0.05] = stalls
        children, _ = local._children(problem, genome, key=0.05)
        dropped = {int(i) for child in children for i in np.flatnonzero(genome & ~child)}
        assert dropped <= set(by_score[:pool].tolist())
        if stalls:
            assert dropped - set(by_score[:8].tolist())  # some moves come from the wider pool


def _nsga2_run(problem, local, budget: int = 80):
    solver = make_solver("nsga2", pop_size=16)
    return search(problem, solver, budget=budget, seed=0, local_search=local)


def test_one_gradient_swaps_object_serves_several_searches_alike(loss_problem) -> None:
    reused = GradientSwaps()
    first = _nsga2_run(loss_problem, reused)
    second = _nsga2_run(loss_problem, reused)
    fresh = _nsga2_run(loss_problem, GradientSwaps())
    for other in (second, fresh):
        assert np.array_equal(other.front.genomes, first.front.genomes)
        np.testing.assert_array_equal(other.front.F, first.front.F)
        assert other.n_evals == first.n_evals


class _RecordingSwaps(GradientSwaps):
    """GradientSwaps that keeps every proposal it hands to the search."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.proposals: list = []

    def improve(self, problem, front):
        proposal = super().improve(problem, front)
        self.proposals.append(proposal)
        return proposal


class _SpyNSGA2(PymooSolver):
    """pymoo NSGA-II that records each inject and the population right after it."""

    def __init__(self, local: _RecordingSwaps, **options) -> None:
        super().__init__("nsga2", **options)
        self.local = local
        self.injections: list[dict] = []

    def inject(self, genomes, F, violation=None) -> None:
        super().inject(genomes, F, violation)
        self.injections.append(
            {
                "after_proposal": len(self.local.proposals) - 1,
                "genomes": np.array(genomes, copy=True),
                "F": np.array(F, copy=True),
                "violation": np.array(violation, copy=True),
                "population": np.asarray(self._algorithm.pop.get("X"), dtype=self.dtype).copy(),
            }
        )


def test_improved_genomes_are_injected_and_join_the_population(loss_problem) -> None:
    # one step per target: each injected genome beats a front member at its density, so it
    # is non-dominated and NSGA-II's survival must keep it
    local = _RecordingSwaps(steps=1, children=4)
    solver = _SpyNSGA2(local, pop_size=16)
    search(loss_problem, solver, budget=160, seed=0, local_search=local)

    improving = [i for i, p in enumerate(local.proposals) if len(p.improved)]
    assert improving, "the local search never improved a mask: the test proves nothing"
    # one inject per improving proposal, right after it, with exactly its improved rows
    assert [record["after_proposal"] for record in solver.injections] == improving
    for record in solver.injections:
        proposal = local.proposals[record["after_proposal"]]
        rows = proposal.improved
        # a shipped solver evolves the weights encoding's genomes packed, eight genes a byte
        np.testing.assert_array_equal(
            record["genomes"], np.packbits(proposal.genomes[rows], axis=1)
        )
        np.testing.assert_array_equal(record["F"], proposal.evaluation.F[rows])
        np.testing.assert_array_equal(record["violation"], proposal.evaluation.violation[rows])
        # they are in the population the next generation breeds from
        population = {row.tobytes() for row in record["population"]}
        assert all(genome.tobytes() in population for genome in record["genomes"])


def test_mask_gradient_of_a_convnet_on_the_cpu_equals_autograd_on_the_pruned_model() -> None:
    # convolutions go through in batches of 256 on channels-last weights: more than one batch
    # here, and a first convolution with one input channel
    from collections import OrderedDict

    from masksearch import PruningProblem
    from masksearch.data import Split

    generator = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(
        OrderedDict(
            conv1=torch.nn.Conv2d(1, 4, 3),
            pool=torch.nn.MaxPool2d(2),
            conv2=torch.nn.Conv2d(4, 6, 3),
            flatten=torch.nn.Flatten(),
            fc=torch.nn.Linear(6, 10),
        )
    ).eval()
    x = torch.randn(600, 1, 8, 8, generator=generator)
    y = torch.randint(0, 10, (600,), generator=generator)
    problem = PruningProblem(model, Split(x, y), objectives=("loss", "density"))
    genome = problem.magnitude_genomes()[0]
    flat = problem.encoding.decode(genome[None])[0]
    mask = problem.mask(genome)
    pruned = mask.apply(copy.deepcopy(model))
    F.cross_entropy(pruned(x), y).backward()
    params = dict(pruned.named_parameters())
    originals = dict(model.named_parameters())
    expected = np.concatenate(
        [(params[n].grad * originals[n].detach()).reshape(-1).numpy() for n in mask.names]
    )
    np.testing.assert_allclose(mask_gradient(problem, flat), expected, rtol=1e-4, atol=1e-6)
