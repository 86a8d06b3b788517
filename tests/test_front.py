from __future__ import annotations

import pickle

import numpy as np
import pytest

from masksearch.front import ParetoFront, hypervolume, non_dominated
from masksearch.mask import Layout


def _brute_non_dominated(F: np.ndarray) -> np.ndarray:
    keep = []
    for i in range(len(F)):
        dominated = any(
            np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in range(len(F)) if j != i
        )
        keep.append(not dominated)
    return np.array(keep)


def test_non_dominated_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        F = rng.integers(0, 5, size=(30, 2)).astype(float)
        assert np.array_equal(non_dominated(F), _brute_non_dominated(F))


def test_hypervolume_2d_matches_grid_count() -> None:
    rng = np.random.default_rng(1)
    F = rng.random((8, 2))
    reference = np.array([1.0, 1.0])
    grid = (np.arange(400) + 0.5) / 400
    xs, ys = np.meshgrid(grid, grid)
    points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    covered = np.zeros(len(points), dtype=bool)
    for f in F:
        covered |= np.all(points >= f, axis=1)
    assert hypervolume(F, reference) == pytest.approx(covered.mean(), abs=5e-3)


def test_hypervolume_3d_uses_pymoo() -> None:
    F = np.array([[0.5, 0.5, 0.5]])
    assert hypervolume(F, np.ones(3)) == pytest.approx(0.125)


def _front() -> ParetoFront:
    layout = Layout(("w",), ((4,),))
    return ParetoFront(("error", "density"), layout, lambda genomes: genomes.astype(bool))


def test_update_keeps_only_non_dominated_unique_members() -> None:
    front = _front()
    genomes = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0]], dtype=bool)
    F = np.array([[0.1, 1.0], [0.2, 0.5], [0.5, 0.25], [0.2, 0.5]])
    metrics = {"error": F[:, 0], "density": F[:, 1], "loss": F[:, 0] * 2}
    front.update(genomes, F, metrics)
    assert len(front) == 3  # the duplicate is stored once
    worse = np.array([[0.6, 0.5]])
    front.update(genomes[1:2], worse, {k: v[:1] for k, v in metrics.items()})
    assert len(front) == 3
    assert front.best(max_density=0.5).density == pytest.approx(0.5)
    assert front.best().density == 1.0


def test_update_hashes_only_genomes_no_member_dominates(monkeypatch) -> None:
    import masksearch.front

    hashed: list[int] = []
    row_keys = masksearch.front.row_keys
    monkeypatch.setattr(
        masksearch.front, "row_keys", lambda rows: hashed.append(len(rows)) or row_keys(rows)
    )
    front = _front()
    genomes = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    F = np.array([[0.1, 1.0], [0.2, 0.5], [0.5, 0.25]])
    front.update(genomes, F, {"error": F[:, 0], "density": F[:, 1]})
    children = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=bool)
    # the first two are dominated by members, the third is not (it beats every density)
    F_children = np.array([[0.3, 0.5], [0.6, 1.0], [0.9, 0.1]])
    front.update(children, F_children, {"error": F_children[:, 0], "density": F_children[:, 1]})
    assert hashed == [3, 1]
    assert len(front) == 4 and front.F[:, 1].min() == pytest.approx(0.1)


def test_best_explains_an_unreachable_density() -> None:
    front = _front()
    F = np.array([[0.1, 0.5]])
    front.update(np.array([[1, 1, 0, 0]], dtype=bool), F, {"error": F[:, 0], "density": F[:, 1]})
    with pytest.raises(ValueError, match="sparsest has 0.5000"):
        front.best(max_density=0.1)


def test_empty_front_says_so() -> None:
    with pytest.raises(ValueError, match="empty"):
        _front().best()


def test_best_within_matches_a_filtered_minimum() -> None:
    from masksearch.front import best_within

    rng = np.random.default_rng(0)
    density, values = rng.random(50), rng.random(50)
    for target in (0.05, 0.3, 0.9):
        within = np.flatnonzero(density <= target)
        position = best_within(density, values, target)
        assert position == within[np.argmin(values[within])]
    assert best_within(density, values, density.min() / 2) is None
    # the slack admits a mask half a weight over the target
    assert best_within([0.1 + 1e-9], [0.5], 0.1, slack=1e-8) == 0


def test_updates_over_generations_equal_one_merge_of_everything() -> None:
    """The archive after many updates is the non-dominated unique set of all it was given."""
    rng = np.random.default_rng(7)
    layout = Layout(names=("w",), shapes=((6,),))
    front = ParetoFront(("error", "density"), layout, decode=lambda g: g)
    seen_genomes, seen_F = [], []
    for generation in range(15):
        # few distinct genomes and coarse objectives: many repeats and ties across generations
        genomes = rng.random((10, 6)) < 0.5
        genomes[:4] = genomes[0]
        # a genome's objectives are a function of the genome, as in a search
        code = genomes @ (1 << np.arange(6))
        F = np.stack([(code * 7 % 6) / 6, genomes.mean(axis=1)], axis=1)
        front.update(
            genomes,
            F,
            {"error": F[:, 0], "density": F[:, 1], "step": np.full(10, 1.0 * generation)},
        )
        seen_genomes.append(genomes)
        seen_F.append(F)
        if generation == 7:
            front.genomes = front.genomes.copy()  # replaced from outside: keys recomputed
    genomes, F = np.concatenate(seen_genomes), np.concatenate(seen_F)
    first = {}
    for i, genome in enumerate(genomes):
        first.setdefault(genome.tobytes(), i)
    unique = np.array(sorted(first.values()))
    kept = unique[_brute_non_dominated(F[unique])]
    kept = kept[np.lexsort(F[kept].T[::-1])]
    np.testing.assert_array_equal(front.genomes, genomes[kept])
    np.testing.assert_array_equal(front.F, F[kept])
    np.testing.assert_array_equal(front.metrics["step"], np.repeat(np.arange(15.0), 10)[kept])


def _identity(genomes: np.ndarray) -> np.ndarray:
    return genomes  # a picklable decode


def test_bool_genomes_are_stored_packed_and_come_back_unchanged() -> None:
    rng = np.random.default_rng(3)
    n_genes = 1_003  # not a whole number of bytes
    layout = Layout(names=("w",), shapes=((n_genes,),))
    front = ParetoFront(("error", "density"), layout, decode=_identity)
    genomes = rng.random((6, n_genes)) < 0.3
    F = np.stack([np.linspace(0.6, 0.1, 6), np.linspace(0.1, 0.6, 6)], axis=1)  # all optimal
    front.update(genomes, F, {"error": F[:, 0], "density": F[:, 1]})
    assert front._stored.nbytes == 6 * ((n_genes + 7) // 8)  # an eighth of the bool rows
    np.testing.assert_array_equal(front.genomes, genomes[np.argsort(F[:, 0])])
    for position in range(6):
        np.testing.assert_array_equal(front.genome(position), front.genomes[position])
        np.testing.assert_array_equal(front.mask(position).flat(), front.genomes[position])
    with pytest.raises(IndexError, match="no member 6"):
        front.genome(6)
    restored = pickle.loads(pickle.dumps(front))
    np.testing.assert_array_equal(restored.genomes, front.genomes)
    # keys computed from packed rows equal those of the bool genomes: a repeat is refused
    restored.update(genomes[:1], F[:1] * 0.5, {"error": F[:1, 0] * 0.5, "density": F[:1, 1]})
    assert len(restored) == 6


def test_integer_genomes_are_stored_as_they_are() -> None:
    layout = Layout(names=("w",), shapes=((5,),))
    front = ParetoFront(("error", "density"), layout, decode=lambda g: g > 0)
    genomes = np.array([[0, 3, 1, 2, 0], [4, 4, 4, 4, 4]], dtype=np.int16)
    F = np.array([[0.5, 0.2], [0.1, 0.9]])
    front.update(genomes, F, {"error": F[:, 0], "density": F[:, 1]})
    assert front.genomes.dtype == np.int16
    np.testing.assert_array_equal(front.genomes, genomes[::-1])


def test_a_front_pickled_before_packed_storage_still_loads() -> None:
    layout = Layout(names=("w",), shapes=((4,),))
    front = ParetoFront(("error", "density"), layout, decode=lambda g: g)
    genomes = np.array([[1, 0, 1, 1]], dtype=bool)
    # the attributes a front had when it stored genomes as they came
    old_state = {
        "objectives": ("error", "density"),
        "_layout": layout,
        "_decode": None,
        "genomes": genomes,
        "F": np.array([[0.1, 0.75]]),
        "metrics": {"error": np.array([0.1]), "density": np.array([0.75])},
    }
    restored = ParetoFront.__new__(ParetoFront)
    restored.__setstate__(dict(old_state))
    np.testing.assert_array_equal(restored.genomes, genomes)
    assert len(restored) == 1 and front.genomes is None


def test_packed_rows_merge_as_the_bool_genomes_they_stand_for() -> None:
    rng = np.random.default_rng(5)
    n_genes = 37
    layout = Layout(names=("w",), shapes=((n_genes,),))
    from_bool = ParetoFront(("error", "density"), layout, decode=_identity)
    from_packed = ParetoFront(("error", "density"), layout, decode=_identity)
    for _ in range(6):
        genomes = rng.random((8, n_genes)) < 0.4
        genomes[4:] = genomes[:4]  # repeats within a batch
        F = np.stack([rng.random(8).round(1), genomes.mean(axis=1)], axis=1)
        F[4:] = F[:4]
        metrics = {"error": F[:, 0], "density": F[:, 1]}
        from_bool.update(genomes, F, metrics)
        from_packed.update(np.packbits(genomes, axis=1), F, metrics, packed_bits=n_genes)
    np.testing.assert_array_equal(from_packed.genomes, from_bool.genomes)
    np.testing.assert_array_equal(from_packed.F, from_bool.F)


def test_keys_pickled_with_a_front_are_recomputed_on_load() -> None:
    # a checkpoint written by another version may hold keys of another hash: trusting them
    # would let a member's genome enter the front a second time
    layout = Layout(names=("w",), shapes=((40,),))
    front = ParetoFront(("error", "density"), layout, decode=_identity)
    genomes = np.random.default_rng(6).random((3, 40)) < 0.5
    F = np.stack([np.linspace(0.6, 0.2, 3), np.linspace(0.2, 0.6, 3)], axis=1)
    front.update(genomes, F, {"error": F[:, 0], "density": F[:, 1]})
    state = pickle.loads(pickle.dumps(front)).__dict__
    state["_keys"] = [b"another hash's key"] * 3
    restored = ParetoFront.__new__(ParetoFront)
    restored.__setstate__(state)
    restored.update(genomes, F, {"error": F[:, 0], "density": F[:, 1]})  # the same members
    assert len(restored) == 3
