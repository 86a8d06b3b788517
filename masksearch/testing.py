"""A conformance test case for solvers, plus the toy operators and problem it runs on.

Inherit ``SolverConformance`` in a pytest module and override ``make_solver``::

    class TestMySolver(SolverConformance):
        def make_solver(self):
            return MySolver(pop_size=8)

pytest then runs every ``test_*`` check on it. The checks hold a solver to the contract that
``masksearch.solvers.Solver`` states; ``masksearch.search`` relies on nothing beyond it.

Required of every solver: the protocol's form (``check_solver``, what ``search`` checks before
it starts), plain bool genomes when ``operators`` is None, shapes, dtypes and bounds (bool and
int64 genomes), determinism under a seed, a seed that matters, no global RNG use, the
``initial`` genomes in the first ask, several generations of valid populations on a toy
bi-objective problem, progress on it (clearly more than the same solver makes when ``tell``
reports the objectives of unrelated random genomes), pickling mid-run, and ``tell`` accepting
valid input (+inf objectives, violations) and raising ValueError on malformed input.

Optional, checked only when the solver has them (``search`` uses them only then too):
``done`` must read as a bool, and after ``inject(genomes, F, violation)`` between generations
the populations must stay valid.

Override a check to opt out of it. The toy problem runs in milliseconds; each solver's whole
suite should take well under 2 s.
"""

from __future__ import annotations

import pickle
import random

import numpy as np

from masksearch.solvers.base import Solver, as_genomes, check_solver, solver_done, solver_inject

__all__ = ["SolverConformance", "ToyBinaryOperators", "ToyLevelOperators", "ToyProblem"]


class ToyBinaryOperators:
    """Bool genomes. sample: densities spread over [0.25, 0.75]; mutate: per genome, with
    probability 1/2 swap one kept and one pruned gene (density unchanged), else flip one gene;
    crossover: uniform; repair: identity."""

    def __init__(self, n_genes: int = 24) -> None:
        self.n_genes = int(n_genes)
        self.dtype = np.dtype(np.bool_)
        self.lower = np.zeros(self.n_genes, dtype=np.int64)
        self.upper = np.ones(self.n_genes, dtype=np.int64)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        densities = rng.uniform(0.25, 0.75, size=(n, 1))
        return rng.random((n, self.n_genes)) < densities

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mutated = self.validate(genomes)
        for row in mutated:
            ones, zeros = np.flatnonzero(row), np.flatnonzero(~row)
            if rng.random() < 0.5 and len(ones) and len(zeros):
                row[rng.choice(ones)] = False
                row[rng.choice(zeros)] = True
            else:
                gene = rng.integers(self.n_genes)
                row[gene] = not row[gene]
        return mutated

    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        first, second = self.validate(first), self.validate(second)
        return np.where(rng.random(first.shape) < 0.5, first, second)

    def repair(self, genomes: np.ndarray) -> np.ndarray:
        return self.validate(genomes)

    def validate(self, genomes: np.ndarray) -> np.ndarray:
        return as_genomes(genomes, self.n_genes, self.dtype)


class ToyLevelOperators:
    """int64 genomes with per-gene bounds ``0 <= gene <= upper`` (upper cycles 1, 2, 3, 4).
    sample: uniform; mutate: one gene one level up or down (bounced off the bounds);
    crossover: uniform; repair: clip into the bounds."""

    def __init__(self, n_genes: int = 24) -> None:
        self.n_genes = int(n_genes)
        self.dtype = np.dtype(np.int64)
        self.lower = np.zeros(self.n_genes, dtype=np.int64)
        self.upper = 1 + np.arange(self.n_genes, dtype=np.int64) % 4

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(self.lower, self.upper + 1, size=(n, self.n_genes))

    def mutate(self, genomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mutated = self.validate(genomes)
        rows = np.arange(len(mutated))
        genes = rng.integers(self.n_genes, size=len(mutated))
        steps = rng.choice(np.array([-1, 1]), size=len(mutated))
        moved = mutated[rows, genes] + steps
        bounced = (moved < self.lower[genes]) | (moved > self.upper[genes])
        moved[bounced] -= 2 * steps[bounced]
        mutated[rows, genes] = moved
        return mutated

    def crossover(
        self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        first, second = self.validate(first), self.validate(second)
        return np.where(rng.random(first.shape) < 0.5, first, second)

    def repair(self, genomes: np.ndarray) -> np.ndarray:
        genomes = as_genomes(genomes, self.n_genes, self.dtype)
        return np.clip(genomes, self.lower, self.upper)

    def validate(self, genomes: np.ndarray) -> np.ndarray:
        return as_genomes(genomes, self.n_genes, self.dtype, lower=self.lower, upper=self.upper)


class ToyProblem:
    """Minimise (sum of genes, L1 distance to a random target genome): for bool genomes the
    number of kept weights and the Hamming distance to a target mask. Its Pareto front runs
    from the all-zero genome to the target."""

    n_obj = 2

    def __init__(self, operators: ToyBinaryOperators | ToyLevelOperators, seed: int = 0) -> None:
        self.operators = operators
        self.target = operators.sample(1, np.random.default_rng(seed))[0]

    def evaluate(self, genomes: np.ndarray) -> np.ndarray:
        genomes = self.operators.validate(genomes).astype(np.int64)
        size = genomes.sum(axis=1)
        distance = np.abs(genomes - self.target.astype(np.int64)).sum(axis=1)
        return np.stack([size, distance], axis=1).astype(np.float64)


def _check(condition: object, message: str) -> None:
    # explicit raise, not assert: the checks must also run under python -O
    if not condition:
        raise AssertionError(message)


class SolverConformance:
    """Checks every solver must pass; subclass it and override ``make_solver``.

    The class name does not start with ``Test``, so pytest only collects subclasses that do.
    Class attributes tune the run: ``n_genes`` (toy genome length), ``generations`` (how long
    the multi-generation checks run; at least 6), ``genome_kinds`` (drop "int" for a
    binary-only solver), and for the progress check ``improvement_seeds`` (the runs it
    averages over) and ``min_improvement`` (how much lower, in toy objective units, the mean
    objective sum of generations 3+ must be with true feedback than with uninformative one).
    """

    n_genes: int = 24
    generations: int = 8
    genome_kinds: tuple[str, ...] = ("bool", "int")
    improvement_seeds: tuple[int, ...] = (5, 6, 7, 8)
    min_improvement: float = 1.0

    def make_solver(self) -> Solver:
        """Return a fresh solver, not yet set up. Override this."""
        raise NotImplementedError(
            f"{type(self).__name__} must override make_solver() to return the solver under test"
        )

    # ---- helpers -------------------------------------------------------------------------

    def toy_operators(self, kind: str) -> ToyBinaryOperators | ToyLevelOperators:
        return (
            ToyBinaryOperators(self.n_genes) if kind == "bool" else ToyLevelOperators(self.n_genes)
        )

    def started(
        self,
        kind: str = "bool",
        seed: int = 0,
        *,
        initial: np.ndarray | None = None,
    ) -> tuple[Solver, ToyBinaryOperators | ToyLevelOperators]:
        """A fresh solver set up on the toy operators of ``kind`` ("bool" or "int")."""
        solver = self.make_solver()
        operators = self.toy_operators(kind)
        solver.setup(
            self.n_genes,
            ToyProblem.n_obj,
            np.random.default_rng(seed),
            operators=operators,
            initial=initial,
        )
        return solver, operators

    def is_done(self, solver: Solver) -> bool:
        """The solver's optional ``done``, read as ``search`` reads it (False when absent)."""
        try:
            return solver_done(solver)
        except TypeError as error:
            raise AssertionError(str(error)) from error

    def check_population(
        self, genomes: object, operators: ToyBinaryOperators | ToyLevelOperators, where: str
    ) -> np.ndarray:
        """Raise AssertionError unless ``genomes`` is a valid population for ``operators``."""
        _check(
            isinstance(genomes, np.ndarray),
            f"{where}: ask() returned {type(genomes).__name__}, not a numpy array",
        )
        _check(
            genomes.ndim == 2 and genomes.shape[1] == operators.n_genes and len(genomes) >= 1,
            f"{where}: ask() returned shape {genomes.shape}, expected (P >= 1, {operators.n_genes})",
        )
        _check(
            genomes.dtype == operators.dtype,
            f"{where}: ask() returned dtype {genomes.dtype}, expected the operators' {operators.dtype}",
        )
        if genomes.dtype != np.bool_:
            _check(
                bool(np.all(genomes >= operators.lower) and np.all(genomes <= operators.upper)),
                f"{where}: ask() returned genes outside [operators.lower, operators.upper]",
            )
        operators.validate(genomes)
        return genomes

    def run(
        self,
        kind: str = "bool",
        seed: int = 0,
        generations: int = 3,
        *,
        initial: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """Ask/tell ``generations`` times on the toy problem; return every asked population."""
        solver, operators = self.started(kind, seed, initial=initial)
        problem = ToyProblem(operators)
        asked = []
        for generation in range(generations):
            if self.is_done(solver):
                break
            genomes = self.check_population(solver.ask(), operators, f"generation {generation}")
            asked.append(genomes.copy())
            solver.tell(genomes, problem.evaluate(genomes))
        return asked

    def progress_run(
        self, kind: str, seed: int, *, informed: bool
    ) -> tuple[float, list[np.ndarray]]:
        """Run ``generations`` generations on the toy problem and return the mean objective
        sum of the genomes asked from generation 3 on, plus every asked population.

        ``informed=False`` tells the solver the objectives of random genomes drawn apart from
        the search instead of those of its own: the same solver with its feedback cut off.
        """
        solver, operators = self.started(kind, seed)
        problem = ToyProblem(operators)
        # a stream of its own, so that both runs hand the solver the same rng state
        decoys = np.random.default_rng([seed, 1])
        asked: list[np.ndarray] = []
        for generation in range(self.generations):
            if self.is_done(solver):
                break
            genomes = self.check_population(solver.ask(), operators, f"generation {generation}")
            asked.append(genomes.copy())
            told = genomes if informed else operators.sample(len(genomes), decoys)
            solver.tell(genomes, problem.evaluate(told))
        _check(len(asked) >= 6, f"{kind}: the solver stopped after {len(asked)} generations")
        later = np.concatenate([problem.evaluate(genomes) for genomes in asked[3:]])
        return float(later.sum(axis=1).mean()), asked

    # ---- checks --------------------------------------------------------------------------

    def test_is_a_solver(self) -> None:
        # exactly what search() checks before it starts: an instance with setup/ask/tell whose
        # signatures take the search's arguments, and well-formed optional members
        try:
            check_solver(self.make_solver())
        except TypeError as error:
            raise AssertionError(str(error)) from error

    def test_default_operators_give_bool_genomes(self) -> None:
        solver = self.make_solver()
        solver.setup(self.n_genes, 2, np.random.default_rng(0))
        genomes = solver.ask()
        _check(isinstance(genomes, np.ndarray), "ask() must return a numpy array")
        _check(
            genomes.dtype == np.bool_ and genomes.ndim == 2 and genomes.shape[1] == self.n_genes,
            f"without operators ask() must return (P, {self.n_genes}) bool genomes, got "
            f"{genomes.shape} {genomes.dtype}",
        )

    def test_done_is_a_bool_when_present(self) -> None:
        # done is optional: without it a search runs until its budget or time limit
        solver, operators = self.started("bool", seed=11)
        problem = ToyProblem(operators)
        for _ in range(3):
            if self.is_done(solver):  # raises AssertionError unless done reads as a bool
                break
            genomes = solver.ask()
            solver.tell(genomes, problem.evaluate(genomes))

    def test_ask_shape_dtype_and_bounds(self) -> None:
        for kind in self.genome_kinds:
            solver, operators = self.started(kind)
            self.check_population(solver.ask(), operators, f"{kind} genomes, first ask")

    def test_same_seed_same_asks(self) -> None:
        for kind in self.genome_kinds:
            first, second = self.run(kind, seed=7), self.run(kind, seed=7)
            _check(
                len(first) == len(second),
                f"{kind}: the same seed ran a different number of generations",
            )
            for generation, (a, b) in enumerate(zip(first, second, strict=True)):
                _check(
                    np.array_equal(a, b),
                    f"{kind}: generation {generation} differs between two runs with the same seed; "
                    "draw all randomness from the rng given to setup()",
                )

    def test_seed_matters(self) -> None:
        for kind in self.genome_kinds:
            first, second = self.run(kind, seed=1), self.run(kind, seed=2)
            same = len(first) == len(second) and all(
                np.array_equal(a, b) for a, b in zip(first, second, strict=True)
            )
            _check(
                not same, f"{kind}: seeds 1 and 2 gave identical runs; use the rng given to setup()"
            )

    def test_global_rng_untouched(self) -> None:
        python_state, numpy_state = random.getstate(), np.random.get_state()
        self.run("bool", seed=3)
        _check(random.getstate() == python_state, "the solver used the global `random` module")
        after = np.random.get_state()
        _check(
            all(np.array_equal(a, b) for a, b in zip(numpy_state, after, strict=True)),
            "the solver used the global `np.random` state",
        )

    def test_initial_genomes_in_first_ask(self) -> None:
        for kind in self.genome_kinds:
            operators = self.toy_operators(kind)
            initial = operators.sample(3, np.random.default_rng(99))
            initial[0] = operators.lower  # an extreme genome no sampler draws by chance
            first = self.run(kind, seed=0, generations=1, initial=initial)[0]
            for row, genome in enumerate(initial):
                _check(
                    bool((first == genome).all(axis=1).any()),
                    f"{kind}: initial genome {row} is missing from the first ask()",
                )

    def test_keeps_producing_valid_populations(self) -> None:
        for kind in self.genome_kinds:
            asked = self.run(kind, seed=4, generations=self.generations)
            _check(
                len(asked) == self.generations,
                f"{kind}: the solver reported done after {len(asked)} generations of a toy problem",
            )

    def test_improves_on_toy_problem(self) -> None:
        # The toy objectives sum to |target| on the Pareto front and more elsewhere, so a
        # population moving toward the front lowers the mean sum. The control is the same
        # solver, same seeds, told the objectives of unrelated random genomes: any drift that
        # does not come from tell() (a bias of the operators or of the solver, or chance on
        # one seed) shows up in both runs, and only learning from tell() separates them.
        # The best of each generation is no good signal: elitist solvers keep their best in
        # the population and ask only for new children.
        seeds = self.improvement_seeds
        for kind in self.genome_kinds:
            informed, blind, same_asks = [], [], True
            for seed in seeds:
                told_truth, asked = self.progress_run(kind, seed, informed=True)
                told_noise, asked_blind = self.progress_run(kind, seed, informed=False)
                informed.append(told_truth)
                blind.append(told_noise)
                same_asks &= len(asked) == len(asked_blind) and all(
                    np.array_equal(a, b) for a, b in zip(asked, asked_blind, strict=True)
                )
            _check(
                not same_asks,
                f"{kind}: the solver asked for exactly the same genomes whether tell() reported "
                "their true objectives or those of unrelated random genomes; ask() must depend "
                "on what tell() reports",
            )
            gain = float(np.mean(blind) - np.mean(informed))
            _check(
                gain >= self.min_improvement,
                f"{kind}: on a toy problem the mean objective sum of generations 3+ is "
                f"{np.mean(informed):.2f} when tell() reports the true objectives and "
                f"{np.mean(blind):.2f} when it reports those of unrelated random genomes "
                f"(seeds {list(seeds)}); true feedback must lower it by at least "
                f"{self.min_improvement}. Does tell() steer the search toward lower objectives?",
            )

    def test_pickle_round_trip_mid_run(self) -> None:
        for kind in self.genome_kinds:
            solver, operators = self.started(kind, seed=6)
            problem = ToyProblem(operators)
            for _ in range(2):
                genomes = solver.ask()
                solver.tell(genomes, problem.evaluate(genomes))
            try:
                clone = pickle.loads(pickle.dumps(solver))
            except Exception as error:
                raise AssertionError(
                    f"{kind}: the solver does not survive a pickle round trip mid-run "
                    f"({type(error).__name__}: {error}); checkpoints pickle it"
                ) from error
            for generation in range(2):
                original, restored = solver.ask(), clone.ask()
                _check(
                    np.array_equal(original, restored),
                    f"{kind}: generation {generation} after a pickle round trip differs from the "
                    "original's; pickle every piece of state, the rng included",
                )
                solver.tell(original, problem.evaluate(original))
                clone.tell(restored, problem.evaluate(restored))

    def test_tell_accepts_valid_input(self) -> None:
        solver, operators = self.started("bool", seed=8)
        problem = ToyProblem(operators)
        for generation in range(3):
            genomes = solver.ask()
            F = problem.evaluate(genomes)
            F[0] = np.inf  # a failed evaluation
            violation = np.where(np.arange(len(genomes)) % 3 == 1, 0.5, 0.0)
            solver.tell(genomes, F, violation)
            self.check_population(solver.ask(), operators, f"after tell #{generation}")

    def test_tell_rejects_malformed_input(self) -> None:
        solver, operators = self.started("bool", seed=9)
        genomes = solver.ask()
        F = ToyProblem(operators).evaluate(genomes)
        nan_F = F.copy()
        nan_F[0, 0] = np.nan
        bad_calls = {
            "F with a missing objective column": (genomes, F[:, :1]),
            "F with a missing row": (genomes, F[:-1]),
            "F containing NaN": (genomes, nan_F),
            "one genome fewer than F rows": (genomes[:-1], F),
        }
        for what, (told, values) in bad_calls.items():
            try:
                solver.tell(told, values)
            except ValueError:
                continue
            raise AssertionError(f"tell() accepted {what}; raise ValueError naming the problem")

    def test_inject_between_generations(self) -> None:
        # inject() is optional: a search only calls it when the solver has it, and so does this
        for kind in self.genome_kinds:
            solver, operators = self.started(kind, seed=10)
            try:
                inject = solver_inject(solver)
            except TypeError as error:
                raise AssertionError(str(error)) from error
            if inject is None:
                return
            problem = ToyProblem(operators)
            for generation in range(3):
                genomes = solver.ask()
                solver.tell(genomes, problem.evaluate(genomes))
                foreign = operators.sample(3, np.random.default_rng(generation))
                inject(foreign, problem.evaluate(foreign))
                self.check_population(solver.ask(), operators, f"{kind}: after inject()")
