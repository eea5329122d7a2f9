"""Tests for course.data: the toy datasets, Booth's function, gradient descent, the digits."""

from __future__ import annotations

import warnings
from importlib import resources

import numpy as np
import pytest

from course import data
from course.gradcheck import numerical_gradient, relative_error

# ----------------------------------------------------------------------------------------
# Toy classification problems
# ----------------------------------------------------------------------------------------


def test_xor_is_the_truth_table():
    """Check that xor() returns the four corners with XOR labels, as float64 / int64."""
    X, y = data.xor()
    assert X.dtype == np.float64 and X.shape == (4, 2)
    assert y.dtype == np.int64 and y.shape == (4,)
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y, np.logical_xor(X[:, 0], X[:, 1]).astype(int))


def test_spirals_shapes_balance_and_radius():
    """Check that spirals() has N = n_per_class * K rows, balanced classes and radii in [0, 1]."""
    X, y = data.spirals(n_per_class=50, n_classes=4, noise=0.3, rng=1)
    assert X.shape == (200, 2) and X.dtype == np.float64
    assert y.shape == (200,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [50, 50, 50, 50])
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.min() >= 0.0 and radius.max() <= 1.0 + 1e-12
    # every arm runs from the centre out to radius 1
    for k in range(4):
        r = radius[y == k]
        assert r.min() == pytest.approx(0.0) and r.max() == pytest.approx(1.0)


def test_spirals_without_noise_is_the_cs231n_formula():
    """Check that arm k puts point i at r (sin t, cos t) with r, t on the CS231n grids."""
    n = 7
    X, y = data.spirals(n_per_class=n, n_classes=3, noise=0.0)
    for k in range(3):
        r = np.linspace(0, 1, n)
        t = np.linspace(4 * k, 4 * (k + 1), n)
        np.testing.assert_allclose(X[y == k], np.c_[r * np.sin(t), r * np.cos(t)], atol=1e-15)


def test_spirals_noise_moves_points_along_their_circle():
    """Check that the noise changes the angle only: radii equal those of the noise-free data."""
    X0, _ = data.spirals(noise=0.0)
    X1, _ = data.spirals(noise=0.5, rng=3)
    np.testing.assert_allclose(np.hypot(*X1.T), np.hypot(*X0.T), atol=1e-12)
    assert not np.allclose(X0, X1)


@pytest.mark.parametrize("make", [data.spirals, data.blobs])
def test_seeding(make):
    """Check that the same seed gives the same data and a different seed different data."""
    X1, y1 = make(rng=5)
    X2, y2 = make(rng=5)
    X3, _ = make(rng=6)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(X1, X3)
    # a Generator is accepted and advanced
    gen = np.random.default_rng(5)
    Xa, _ = make(rng=gen)
    Xb, _ = make(rng=gen)
    np.testing.assert_array_equal(Xa, X1)
    assert not np.allclose(Xa, Xb)


def test_blobs_match_their_centres_and_spread():
    """Check that each blob's mean is its centre and its standard deviation is std."""
    centers = np.array([[0.0, 0.0], [5.0, 1.0]])
    X, y = data.blobs(n_per_class=4000, centers=centers, std=0.7, rng=0)
    assert X.shape == (8000, 2) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [4000, 4000])
    for k in range(2):
        np.testing.assert_allclose(X[y == k].mean(axis=0), centers[k], atol=0.05)
        np.testing.assert_allclose(X[y == k].std(axis=0), 0.7, rtol=0.05)


def test_blobs_default_has_three_separated_classes():
    """Check that the default blobs are three classes whose means are far apart."""
    X, y = data.blobs()
    assert X.shape == (300, 2)
    means = np.array([X[y == k].mean(axis=0) for k in range(3)])
    gaps = [np.linalg.norm(means[i] - means[j]) for i in range(3) for j in range(i)]
    assert min(gaps) > 4 * 0.5


@pytest.mark.parametrize(
    "call",
    [
        lambda: data.spirals(n_per_class=-1),
        lambda: data.spirals(n_per_class=0),
        lambda: data.spirals(n_classes=0),
        lambda: data.spirals(n_per_class=2.5),
        lambda: data.spirals(noise=-0.1),
        lambda: data.blobs(n_per_class=-3),
        lambda: data.blobs(std=-1.0),
        lambda: data.blobs(centers=[1.0, 2.0]),
        lambda: data.blobs(centers=np.zeros((3, 3))),
    ],
)
def test_bad_arguments_raise_value_error(call):
    """Check that impossible sizes and spreads are refused with a ValueError."""
    with pytest.raises(ValueError):
        call()


# ----------------------------------------------------------------------------------------
# Booth's function
# ----------------------------------------------------------------------------------------


def test_booth_hand_computed_values():
    """Check f(1, 3) = 0 and a few values worked by hand."""
    assert data.booth(data.BOOTH_MINIMUM) == 0.0
    assert data.booth([1.0, 3.0]) == 0.0
    assert data.booth([0.0, 0.0]) == pytest.approx(74.0)  # 7² + 5²
    assert data.booth([1.0, 1.0]) == pytest.approx(20.0)  # (−4)² + (−2)²
    assert data.booth([-8.0, 8.0]) == pytest.approx(170.0)  # 1² + (−13)²
    assert data.booth([3.0, 0.0]) == pytest.approx(17.0)  # (−4)² + 1²
    assert isinstance(data.booth([0.0, 0.0]), float)


def test_booth_is_vectorised_over_leading_axes():
    """Check that a stacked meshgrid gives a grid of values equal to point-by-point calls."""
    xx, yy = np.meshgrid(np.linspace(-3, 3, 4), np.linspace(-2, 5, 3))
    grid = np.stack([xx, yy], axis=-1)
    values = data.booth(grid)
    assert values.shape == (3, 4)
    expected = [[data.booth(grid[i, j]) for j in range(4)] for i in range(3)]
    np.testing.assert_allclose(values, expected)
    assert data.booth_grad(grid).shape == (3, 4, 2)


def test_booth_grad_matches_centred_differences():
    """Check booth_grad against course.gradcheck.numerical_gradient at random points."""
    rng = np.random.default_rng(0)
    for _ in range(10):
        w = rng.uniform(-10, 10, size=2)
        numeric = numerical_gradient(data.booth, w.copy())
        assert relative_error(data.booth_grad(w), numeric) < 1e-7
    np.testing.assert_array_equal(data.booth_grad(data.BOOTH_MINIMUM), [0.0, 0.0])


def test_booth_hessian_eigenvalues_are_2_and_18():
    """Check the curvature behind the learning-rate regimes: Hessian eigenvalues 2 and 18."""
    w, h = np.array([0.3, -1.2]), 1e-4
    hessian = np.column_stack([(data.booth_grad(w + h * e) - data.booth_grad(w - h * e)) / (2 * h) for e in np.eye(2)])
    np.testing.assert_allclose(np.linalg.eigvalsh(hessian), [2.0, 18.0], rtol=1e-6)


def test_booth_rejects_points_that_are_not_pairs():
    """Check that a point without a last axis of size 2 is refused."""
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        data.booth([1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        data.booth_grad(np.zeros((4, 3)))


# ----------------------------------------------------------------------------------------
# Gradient descent on Booth: the lecture's four learning-rate regimes
# ----------------------------------------------------------------------------------------

W0 = np.array([-8.0, 8.0])
STEPS = 50
STIFF = np.array([1.0, 1.0]) / np.sqrt(2)  # eigenvector of the Hessian with eigenvalue 18


def _descend(lr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = data.gradient_descent(data.booth_grad, W0, lr, STEPS)
    error = path - data.BOOTH_MINIMUM
    return path, np.linalg.norm(error, axis=1), error @ STIFF


def test_gradient_descent_path_shape_and_first_step():
    """Check that the path starts at w0 and each row is one update w - lr * grad(w)."""
    path = data.gradient_descent(data.booth_grad, W0, 0.05, 3)
    assert path.shape == (4, 2) and path.dtype == np.float64
    np.testing.assert_array_equal(path[0], W0)
    for t in range(3):
        np.testing.assert_allclose(path[t + 1], path[t] - 0.05 * data.booth_grad(path[t]))
    assert data.gradient_descent(data.booth_grad, W0, 0.05, 0).shape == (1, 2)


def test_lr_001_falls_short():
    """Check that lr = 0.01 is still far from the minimum after the step budget."""
    _, dist, _ = _descend(0.01)
    assert dist[-1] > 2.0
    assert np.all(np.diff(dist) < 0)  # it does go the right way, just slowly


def test_lr_010_converges():
    """Check that lr = 0.10 ends within 1e-3 of the minimum."""
    _, dist, _ = _descend(0.10)
    assert dist[-1] < 1e-3


def test_lr_011_oscillates_and_closes_in_slowly():
    """Check that lr = 0.11 flips sides along the stiff direction every step, shrinking slowly."""
    _, dist, stiff = _descend(0.11)
    tail = stiff[-20:]
    assert np.all(np.sign(tail[1:]) == -np.sign(tail[:-1])), "should alternate sides"
    assert np.all(np.abs(np.diff(np.abs(tail))) > 0) and abs(tail[-1]) < abs(tail[0])
    # the factor per step along the stiff direction is |1 - 0.11 * 18| = 0.98
    np.testing.assert_allclose(tail[1:] / tail[:-1], -0.98, rtol=1e-6)
    assert 0.5 < dist[-1] < dist[0]


def test_lr_012_diverges():
    """Check that lr = 0.12 grows: the error along the stiff direction is multiplied by -1.16."""
    _, dist, stiff = _descend(0.12)
    assert dist[-1] > 100 * dist[0]
    np.testing.assert_allclose(stiff[1:] / stiff[:-1], -1.16, rtol=1e-6)


def test_diverging_run_stops_quietly_with_nan_rows():
    """Check that an overflowing run gives no warning, a finite prefix, then NaN rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = data.gradient_descent(data.booth_grad, W0, 0.5, 2000)
    assert path.shape == (2001, 2)
    done = np.isfinite(path).all(axis=1)
    n_done = int(done.sum())
    assert 10 < n_done < 2001
    assert done[:n_done].all() and np.isnan(path[n_done:]).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.0),
        dict(lr=-0.1),
        dict(lr=float("nan")),
        dict(steps=-1),
        dict(steps=2.5),
        dict(w0=np.zeros((2, 2))),
        dict(grad=lambda w: np.zeros(3)),
    ],
)
def test_gradient_descent_bad_arguments(kwargs):
    """Check that a bad learning rate, step count, start or gradient shape raises ValueError."""
    args = dict(grad=data.booth_grad, w0=W0, lr=0.1, steps=5) | kwargs
    with pytest.raises(ValueError):
        data.gradient_descent(**args)


# ----------------------------------------------------------------------------------------
# Digits
# ----------------------------------------------------------------------------------------


def test_digits_shape_range_and_counts():
    """Check the UCI digits: 1797 images of 64 pixels in [0, 1] (k/16), scikit-learn's counts."""
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))
    np.testing.assert_array_equal(np.bincount(y), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


def test_digits_first_image_is_the_known_zero():
    """Check the first row against the first line of scikit-learn's digits.csv (a 0)."""
    X, y = data.load_digits()
    assert y[0] == 0
    np.testing.assert_array_equal(X[0, :16] * 16, [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0])


def test_digits_load_twice_gives_equal_independent_arrays():
    """Check that two loads are equal and that changing one does not change the other."""
    X1, y1 = data.load_digits()
    X2, y2 = data.load_digits()
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X1[0, 0] = 42.0
    assert data.load_digits()[0][0, 0] == 0.0


def test_digits_ship_as_a_plain_npz_with_attribution():
    """Check the packaged files: uint8 arrays without pickles, a license file, the attribution."""
    folder = resources.files("course").joinpath("_data")
    with folder.joinpath("digits.npz").open("rb") as f, np.load(f, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["X", "y"]
        assert archive["X"].dtype == np.uint8 and archive["y"].dtype == np.uint8
    license_text = folder.joinpath("DIGITS_LICENSE.txt").read_text(encoding="utf-8")
    for text in (data.DIGITS_ATTRIBUTION, license_text):
        assert "Alpaydin" in text and "Kaynak" in text
        assert "CC BY 4.0" in text
        assert "10.24432/C50P49" in text


# ----------------------------------------------------------------------------------------
# train_test_split
# ----------------------------------------------------------------------------------------


def test_split_is_a_partition_with_rows_kept_together():
    """Check that train and test cover every example exactly once, X and y still aligned."""
    X = np.arange(100).reshape(50, 2)
    y = np.arange(50) * 10
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, test_fraction=0.2, rng=3)
    assert len(X_test) == 10 and len(X_train) == 40
    ids = np.concatenate([X_train[:, 0], X_test[:, 0]]) // 2
    np.testing.assert_array_equal(np.sort(ids), np.arange(50))
    assert not set(X_train[:, 0]) & set(X_test[:, 0])
    np.testing.assert_array_equal(y_train, X_train[:, 0] // 2 * 10)
    np.testing.assert_array_equal(y_test, X_test[:, 0] // 2 * 10)
    assert X_train.dtype == X.dtype and y_test.dtype == y.dtype


def test_split_is_seeded_and_shuffles():
    """Check that the same seed gives the same split, another seed another split."""
    X, y = np.arange(40.0)[:, None], np.arange(40)
    a = data.train_test_split(X, y, rng=0)
    b = data.train_test_split(X, y, rng=0)
    c = data.train_test_split(X, y, rng=1)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[3], c[3])
    assert not np.array_equal(np.sort(a[3]), np.arange(len(a[3])))  # not just the first rows


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_split_rejects_fractions_outside_0_1(fraction):
    """Check that test_fraction must lie strictly between 0 and 1."""
    with pytest.raises(ValueError, match="test_fraction"):
        data.train_test_split(np.zeros((10, 2)), np.zeros(10), test_fraction=fraction)


def test_split_rejects_mismatched_lengths():
    """Check that X and y must have the same number of rows."""
    with pytest.raises(ValueError, match="X and y"):
        data.train_test_split(np.zeros((10, 2)), np.zeros(9))
