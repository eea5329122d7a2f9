"""The course's pictures, drawn with matplotlib alone.

Every function draws into the Axes it is given (``ax=...``) or into a new figure, and returns
the Axes, or the Figure when it draws several panels (then ``ax`` may be a sequence of Axes,
one per panel). Nothing calls ``plt.show()``: notebooks display the returned figure, scripts
save it with ``fig.savefig(...)``. Everything works with the non-interactive Agg backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle
from matplotlib.text import Text
from numpy.typing import ArrayLike, NDArray

from .activations import ACTIVATIONS
from .gradcheck import GradCheckReport, TensorCheck
from .graph import Value
from .train import History

__all__ = [
    "activations",
    "contour_path",
    "decision_boundary",
    "digits",
    "draw_graph",
    "gradient_check",
    "loss_curve",
    "show",
    "templates",
]

Array = NDArray[np.float64]
Point = tuple[float, float]

#: One colour per class (matplotlib's "tab10"), shared by regions and points.
CLASS_COLORS = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]  # tab10 is a ListedColormap


def _axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _panels(ax: Axes | Sequence[Axes] | None, n: int, ncols: int, size: float = 3.0) -> list[Axes]:
    """``n`` Axes: the ones given, or a new grid of ``ncols`` columns (extra Axes removed)."""
    if ax is not None:
        # ax may also be the ndarray of Axes that plt.subplots returns, which numpy types cannot say.
        panels = [ax] if isinstance(ax, Axes) else list(np.ravel(ax))  # type: ignore[arg-type]
        if len(panels) != n:
            raise ValueError(f"this plot needs {n} Axes, got {len(panels)}")
        return panels
    nrows = math.ceil(n / ncols)
    fig, grid = plt.subplots(
        nrows, ncols, figsize=(size * ncols, 0.8 * size * nrows), layout="constrained", squeeze=False
    )
    panels = list(grid.ravel())
    for extra in panels[n:]:
        fig.delaxes(extra)
    return panels[:n]


# ----------------------------------------------------------------------------------------
# Activations and training curves
# ----------------------------------------------------------------------------------------


def activations(
    names: Sequence[str] | None = None, x: ArrayLike | None = None, ax: Sequence[Axes] | None = None
) -> Figure:
    """One panel per activation: the function (solid) and its derivative (dashed).

    Parameters
    ----------
    names : sequence of str, optional
        Keys of :data:`course.activations.ACTIVATIONS`; all six by default, in lecture order.
    x : array (P,), optional
        Where to evaluate; ``np.linspace(-5, 5, 401)`` by default.
    ax : sequence of Axes, optional
        One per name.
    """
    names = list(ACTIVATIONS) if names is None else list(names)
    unknown = [name for name in names if name not in ACTIVATIONS]
    if unknown:
        raise ValueError(f"unknown activation(s) {unknown}; choose from {list(ACTIVATIONS)}")
    x = np.linspace(-5.0, 5.0, 401) if x is None else np.asarray(x, dtype=np.float64)
    panels = _panels(ax, len(names), ncols=min(3, len(names)))
    for panel, name in zip(panels, names, strict=True):
        f, f_grad = ACTIVATIONS[name]
        panel.plot(x, f(x), color="C0", lw=2, label="f(x)")
        panel.plot(x, f_grad(x), color="C3", lw=1.5, ls="--", label="f'(x)")
        panel.set_title(name)
        panel.set_xlabel("x")
        panel.grid(True, alpha=0.3)
        panel.legend(loc="upper left", fontsize="small")
    return panels[0].figure  # type: ignore[return-value]  # a SubFigure only when the caller drew into one


def loss_curve(history_or_losses: History | ArrayLike, ax: Axes | None = None, smooth: int = 0) -> Axes:
    """The loss at every step, with an optional moving average.

    Parameters
    ----------
    history_or_losses : History or sequence of float
        A :class:`course.train.History` (its ``.loss``) or the losses themselves.
    smooth : int
        Window of a trailing moving average drawn over the raw curve; 0 or 1 for none.

    The y axis is logarithmic when the (positive) losses span more than two decades.
    """
    losses = np.asarray(getattr(history_or_losses, "loss", history_or_losses), dtype=np.float64).ravel()
    if losses.size == 0:
        raise ValueError("there are no losses to plot (the history is empty)")
    if isinstance(smooth, bool) or int(smooth) != smooth or smooth < 0:
        raise ValueError(f"smooth is a window length and must be a non-negative integer, got {smooth!r}")
    ax = _axes(ax)
    steps = np.arange(losses.size)
    window = min(int(smooth), losses.size)
    if window > 1:
        ax.plot(steps, losses, color="C0", lw=0.8, alpha=0.35, label="loss")
        averaged = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], averaged, color="C0", lw=2, label=f"moving average ({window} steps)")
        ax.legend()
    else:
        ax.plot(steps, losses, color="C0", lw=1.2, label="loss")
    finite = losses[np.isfinite(losses)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    return ax


# ----------------------------------------------------------------------------------------
# Classifiers and optimisation paths in the plane
# ----------------------------------------------------------------------------------------


def decision_boundary(
    model,
    X: ArrayLike,
    y: ArrayLike,
    ax: Axes | None = None,
    resolution: int = 200,
    title: str | None = None,
    *,
    threshold: float = 0.0,
) -> Axes:
    """The regions a 2-D classifier assigns to each class, with the data on top.

    Predictions are the argmax of ``model.forward`` over a grid covering the data (plus a
    margin), or ``score > threshold`` when the model has a single output.

    Parameters
    ----------
    model : Layer
        Anything with ``forward((M, 2)) -> (M, C)`` or ``(M, 1)``.
    X : array (N, 2)
    y : array (N,) of int
    resolution : int
        Grid points per axis.
    threshold : float
        For a single output: 0 for a score (logit), 0.5 for a sigmoid probability.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) != len(y) or len(X) == 0:
        raise ValueError(f"decision_boundary draws 2-D data: X must be (N, 2) and y (N,), got {X.shape} and {y.shape}")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    ax = _axes(ax)
    lo, hi = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * np.maximum(hi - lo, 1e-9) + 0.25
    xs = np.linspace(lo[0] - margin[0], hi[0] + margin[0], resolution)
    ys = np.linspace(lo[1] - margin[1], hi[1] + margin[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    scores = np.asarray(model.forward(grid), dtype=np.float64)
    if scores.ndim == 1 or scores.shape[1] == 1:
        pred = (scores.reshape(-1) > threshold).astype(np.int64)
    else:
        pred = scores.argmax(axis=1)
    n_classes = int(max(y.max(), pred.max())) + 1
    colors = [CLASS_COLORS[k % len(CLASS_COLORS)] for k in range(n_classes)]
    cmap = ListedColormap(colors)
    ax.contourf(xx, yy, pred.reshape(xx.shape), levels=np.arange(n_classes + 1) - 0.5, cmap=cmap, alpha=0.25)
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=y,
        cmap=cmap,
        vmin=-0.5,
        vmax=n_classes - 0.5,
        s=22,
        edgecolors="k",
        linewidths=0.5,
        zorder=3,
    )
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title is not None:
        ax.set_title(title)
    return ax


def _contour_levels(Z: Array, n: int) -> Array:
    """``n`` levels denser near the minimum: equally spaced in sqrt(f − min).

    For a quadratic bowl this draws equally spaced ellipses, as in the lecture figures.
    """
    finite = Z[np.isfinite(Z)]
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.array([lo])
    return lo + (hi - lo) * np.linspace(0.0, 1.0, n + 2)[1:-1] ** 2


def contour_path(
    f: Callable[[Array], ArrayLike],
    paths: Mapping[str, ArrayLike],
    xlim: tuple[float, float] = (-10.0, 10.0),
    ylim: tuple[float, float] = (-10.0, 10.0),
    ax: Axes | None = None,
    levels: int | ArrayLike = 30,
    minimum: ArrayLike | None = None,
) -> Axes:
    """Contours of f with optimisation paths drawn over them.

    Parameters
    ----------
    f : callable
        Takes points (..., 2) and returns values (...), like :func:`course.data.booth`.
    paths : mapping label -> array (T, 2)
        One line with markers per path, e.g. ``{"lr = 0.1": gradient_descent(...)}``.
    xlim, ylim : (float, float)
        The window. Points outside it (a diverging path) are drawn towards the edge in the
        right direction; NaN rows (where a run stopped) are left out.
    levels : int or array
        Number of contour levels (denser near the minimum), or the levels themselves.
    minimum : array (2,), optional
        Marked with a star.
    """
    ax = _axes(ax, figsize=(5.5, 5.0))
    xs = np.linspace(*xlim, 200)
    ys = np.linspace(*ylim, 200)
    xx, yy = np.meshgrid(xs, ys)
    Z = np.asarray(f(np.stack([xx, yy], axis=-1)), dtype=np.float64)
    if Z.shape != xx.shape:
        raise ValueError(f"f should map points (..., 2) to values (...); a (200, 200, 2) grid gave {Z.shape}")
    # np.ndim(levels) == 0: a number, which numpy types cannot narrow to.
    chosen = _contour_levels(Z, int(levels)) if np.ndim(levels) == 0 else np.asarray(levels)  # type: ignore[arg-type]
    ax.contour(xx, yy, Z, levels=chosen, cmap="viridis", linewidths=0.7, alpha=0.6)
    # Clip to a box a few windows wide: far enough that a clipped segment leaves the view at
    # the right angle, near enough that huge values do not break the renderer.
    width, height = xlim[1] - xlim[0], ylim[1] - ylim[0]
    box_lo = np.array([xlim[0] - 3 * width, ylim[0] - 3 * height])
    box_hi = np.array([xlim[1] + 3 * width, ylim[1] + 3 * height])
    for i, (label, path) in enumerate(paths.items()):
        path = np.asarray(path, dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"path {label!r} must have shape (T, 2), got {path.shape}")
        path = path[~np.isnan(path).any(axis=1)]
        path = np.clip(path, box_lo, box_hi)
        color = f"C{i % 10}"
        ax.plot(path[:, 0], path[:, 1], "o-", color=color, ms=3, lw=1.2, label=label)
        if len(path):
            ax.scatter(path[0, 0], path[0, 1], s=40, color=color, edgecolors="k", zorder=3)
    if minimum is not None:
        m = np.asarray(minimum, dtype=np.float64).reshape(2)
        ax.scatter(m[0], m[1], marker="*", s=220, color="gold", edgecolors="k", zorder=4, label="minimum")
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if paths or minimum is not None:
        ax.legend(loc="best", fontsize="small", framealpha=0.9)
    return ax


# ----------------------------------------------------------------------------------------
# Computational graphs
# ----------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-2):
        return f"{v:.2e}"
    return f"{v:.2f}"


def _graph_layout(root: Value) -> tuple[list[Value], dict[int, Point], dict[int, Point]]:
    """Columns and rows for every value node and every op node.

    Returns the value nodes (inputs first), their positions and, for each value made by an
    operation, the position of that op node (keyed by the value's id).

    Columns: inputs in column 0; a computed value two columns right of its deepest input
    (its op node in between), so columns follow the longest path from the leaves. An
    unlabelled leaf used once (a constant such as the 2 in ``2 * x``) is placed just left of
    the op that uses it instead of with the inputs. Rows: the inputs top to bottom in the
    order the expression reads; everything else at the mean height of its inputs, then
    pushed apart so no two nodes in a column overlap.
    """
    order = root.topological_order()
    uses: dict[int, int] = {id(v): 0 for v in order}
    for v in order:
        for child in v._prev:
            uses[id(child)] += 1

    def is_constant(v: Value) -> bool:
        return not v._prev and not v.label and uses[id(v)] == 1

    # A constant sits beside its op only if that op has some non-constant input to sit beside.
    beside: dict[int, Value] = {}
    for v in order:
        if any(not is_constant(c) for c in v._prev):
            beside.update({id(c): v for c in v._prev if is_constant(c)})

    col: dict[int, int] = {}
    for v in order:  # children before parents
        if not v._prev:
            col[id(v)] = 0
        else:
            col[id(v)] = 2 + max(col[id(c)] for c in v._prev if id(c) not in beside)
    for cid, consumer in beside.items():
        col[cid] = col[id(consumer)] - 2

    # Inputs top to bottom in reading order: a preorder walk from the root, children in order.
    reading: list[Value] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if not v._prev and id(v) not in beside:
            reading.append(v)
        stack.extend(reversed(v._prev))
    row: dict[int, float] = {id(v): -float(i) for i, v in enumerate(reading)}
    for v in order:
        if not v._prev:
            continue
        lowest = min(row[id(c)] for c in v._prev if id(c) not in beside)
        for k, c in enumerate(c for c in v._prev if id(c) in beside):
            row[id(c)] = lowest - 1.0 - k  # constants go just below the other inputs
        row[id(v)] = float(np.mean([row[id(c)] for c in v._prev]))

    # Resolve overlaps column by column (op nodes live in odd columns, values in even ones).
    columns: dict[int, list[int]] = {}
    for key, c in col.items():
        columns.setdefault(c, []).append(key)
    for c in sorted(columns):
        keys = sorted(columns[c], key=lambda k: -row[k])
        for above, below in zip(keys, keys[1:], strict=False):
            row[below] = min(row[below], row[above] - 1.0)
    value_pos = {id(v): (float(col[id(v)]), row[id(v)]) for v in order}
    op_pos = {id(v): (col[id(v)] - 1.0, row[id(v)]) for v in order if v._prev}
    return order, value_pos, op_pos


def _arc(start: Point, end: Point, rad: float, n: int) -> list[Point]:
    """Points on matplotlib's "arc3" connection (a quadratic Bézier), equal axis scales assumed."""
    (x0, y0), (x2, y2) = start, end
    cx, cy = (x0 + x2) / 2 + rad * (y2 - y0), (y0 + y2) / 2 - rad * (x2 - x0)
    t = np.linspace(0.0, 1.0, n)
    xs = (1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t**2 * x2
    ys = (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t**2 * y2
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def _bend(start: Point, end: Point, obstacles: list[tuple[float, float, float, float]]) -> float:
    """The smallest arc3 ``rad`` whose arrow from start to end passes no other node."""
    others = [o for o in obstacles if (o[0], o[1]) not in (tuple(start), tuple(end))]
    for rad in (0.0, 0.2, -0.2, 0.3, -0.3, 0.4, -0.4, 0.55, -0.55):
        points = _arc(start, end, rad, 40)[2:-2]
        if not any(abs(px - x) < hw and abs(py - y) < hh for px, py in points for x, y, hw, hh in others):
            return rad
    return 0.0


def draw_graph(root: Value, ax: Axes | None = None, show_grad: bool = True) -> Axes:
    """Draw the computational graph of ``root`` as in the lecture figures.

    Inputs are on the left and the output on the right. Each value is a box with its label
    (if any), its data and, with ``show_grad``, its grad, e.g. "x / -2.00 / grad -4.00";
    each operation is a small circle between its inputs and its result. A value used twice
    is one box with two outgoing arrows.

    The box texts carry ``gid="value"``, the op texts ``gid="op"`` and the arrows
    ``gid="edge"``, so the drawing can be inspected.

    Parameters
    ----------
    root : Value
        The output of the expression (call ``root.backward()`` first to see gradients).
    show_grad : bool
        Whether to print the grads.
    """
    if not isinstance(root, Value):
        raise TypeError(f"draw_graph draws a Value expression, got {type(root).__name__}")
    order, value_pos, op_pos = _graph_layout(root)
    if ax is None:
        n_cols = 1 + max(x for x, _ in value_pos.values())
        n_rows = 1 + max(-y for _, y in value_pos.values()) - min(-y for _, y in value_pos.values())
        ax = _axes(None, figsize=(1.2 + 0.95 * n_cols, 0.8 + 0.95 * n_rows))

    text_of: dict[int, Text] = {}
    for v in order:
        lines = ([v.label] if v.label else []) + [_fmt(v.data)]
        if show_grad:
            lines.append(f"grad {_fmt(v.grad)}")
        is_output = v is root
        text_of[id(v)] = ax.text(
            *value_pos[id(v)],
            "\n".join(lines),
            ha="center",
            va="center",
            fontsize=9,
            linespacing=1.3,
            gid="value",
            zorder=2,
            fontweight="bold" if is_output else "normal",
            bbox=dict(boxstyle="round,pad=0.45", fc="#fff6d5" if is_output else "#e8f0fb", ec="0.25", lw=1.0),
        )
    op_text: dict[int, Text] = {}
    for v in order:
        if v._prev:
            op_text[id(v)] = ax.text(
                *op_pos[id(v)],
                v._op or "?",
                ha="center",
                va="center",
                fontsize=10,
                gid="op",
                zorder=2,
                bbox=dict(boxstyle="circle,pad=0.3", fc="white", ec="0.25", lw=1.0),
            )

    # Approximate half-sizes of the boxes and circles in data units, for routing only.
    obstacles = [(*p, 0.45, 0.35) for p in value_pos.values()] + [(*p, 0.2, 0.2) for p in op_pos.values()]
    extent = list(value_pos.values())

    def arrow(src: Text, dst: Text, start: Point, end: Point, rad: float | None = None) -> None:
        if rad is None:  # straight if nothing is in the way, else bent around it
            rad = _bend(start, end, obstacles)
        extent.extend(_arc(start, end, rad, 5))
        # Drawn after the boxes (higher zorder) so their outlines are in place to clip against.
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                patchA=src.get_bbox_patch(),
                patchB=dst.get_bbox_patch(),
                arrowstyle="-|>",
                mutation_scale=11,
                lw=1.0,
                color="0.2",
                shrinkA=1,
                shrinkB=1,
                connectionstyle=f"arc3,rad={rad}",
                gid="edge",
                zorder=3,
            )
        )

    for v in order:
        if not v._prev:
            continue
        op = op_text[id(v)]
        counts: dict[int, int] = {}
        for child in v._prev:
            counts[id(child)] = counts.get(id(child), 0) + 1
        drawn: dict[int, int] = {}
        for child in v._prev:
            k = drawn.get(id(child), 0)
            drawn[id(child)] = k + 1
            # x * x: the same input twice, drawn as two arrows bent apart
            rad = None if counts[id(child)] == 1 else 0.3 * (1 if k % 2 == 0 else -1) * (1 + k // 2)
            arrow(text_of[id(child)], op, value_pos[id(child)], op_pos[id(v)], rad)
        arrow(op, text_of[id(v)], op_pos[id(v)], value_pos[id(v)], 0.0)

    xs = [p[0] for p in extent]
    ys = [p[1] for p in extent]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_axis_off()
    return ax


# ----------------------------------------------------------------------------------------
# Gradient checks and digits
# ----------------------------------------------------------------------------------------


def _pick_check(report_or_check: GradCheckReport | TensorCheck) -> TensorCheck:
    if isinstance(report_or_check, TensorCheck):
        return report_or_check
    if isinstance(report_or_check, GradCheckReport):
        if not report_or_check.checks:
            raise ValueError("the report contains no gradient checks to draw")
        failing = [c for c in report_or_check.checks if not c.passed]
        return (failing or report_or_check.checks)[0]
    raise TypeError(f"expected a GradCheckReport or TensorCheck, got {type(report_or_check).__name__}")


def gradient_check(report_or_check: GradCheckReport | TensorCheck, ax: Sequence[Axes] | None = None) -> Figure:
    """Picture one gradient check: analytic against numerical, and where they differ.

    The tensor drawn is the TensorCheck given, or the first failing check of a report (its
    first check if all passed). Left: every entry as a point (numerical, analytic) with the
    line y = x where a correct gradient lies. Right: analytic − numerical per entry, as an
    image for a matrix and as stems for a vector (tensors of higher rank are shown as
    (first axis, the rest)). The worst entry is marked in red on both (artists with
    ``gid="worst"``). An analytic entry that is inf or NaN cannot go on the scatter; it is
    drawn at the limit of the difference panel.

    Parameters
    ----------
    report_or_check : GradCheckReport or TensorCheck
    ax : pair of Axes, optional
    """
    check = _pick_check(report_or_check)
    if check.analytic is None or check.numeric is None:
        raise ValueError(f"the check of {check.name} does not carry its gradient arrays")
    analytic = np.asarray(check.analytic, dtype=np.float64)
    numeric = np.asarray(check.numeric, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(
            f"cannot draw {check.name}: the analytic gradient has shape {analytic.shape} but the "
            f"numerical one {numeric.shape}"
        )
    left, right = _panels(ax, 2, ncols=2, size=4.0)
    fig = left.figure
    # Work on a 1-D or 2-D view; higher ranks become (first axis, everything else).
    shape2 = numeric.shape if numeric.ndim <= 2 else (numeric.shape[0], -1)
    a2, n2 = np.atleast_1d(analytic.reshape(shape2)), np.atleast_1d(numeric.reshape(shape2))
    worst = None  # the worst entry's index in the 1-D or 2-D view
    if n2.size and len(check.worst_index) == numeric.ndim:
        flat = np.ravel_multi_index(check.worst_index, numeric.shape) if numeric.ndim else 0
        worst = tuple(int(i) for i in np.unravel_index(flat, n2.shape))

    # Sampled checks leave unchecked entries NaN; an inf or NaN in the analytic gradient
    # cannot be placed on the scatter and shows only on the difference panel.
    shown = np.isfinite(n2) & np.isfinite(a2)
    left.scatter(n2[shown], a2[shown], s=14, color="C0", alpha=0.8, label="entries")
    both = np.concatenate([n2[shown], a2[shown]])
    lo, hi = (float(both.min()), float(both.max())) if both.size else (-1.0, 1.0)
    pad = 0.05 * (hi - lo) + 1e-12
    diagonal = [lo - pad, hi + pad]
    left.plot(diagonal, diagonal, color="0.4", lw=1, ls="--", label="analytic = numerical")
    if worst is not None and shown[worst]:
        left.plot(
            n2[worst],
            a2[worst],
            "o",
            ms=12,
            mfc="none",
            mec="C3",
            mew=2,
            gid="worst",
            label=f"worst entry {check.worst_index}",
        )
    left.set_xlabel("numerical (centred differences)")
    left.set_ylabel("analytic (your backward)")
    left.set_title("analytic vs numerical")
    left.legend(fontsize="small")
    left.grid(True, alpha=0.3)

    diff = a2 - n2
    finite = np.abs(diff[np.isfinite(diff)])
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    # an infinite (or NaN) gradient against a finite numerical one: draw it at the limit
    diff = np.where(np.isfinite(diff) | np.isnan(n2), diff, np.copysign(vmax, np.nan_to_num(diff)))
    if diff.ndim == 2:
        image = right.imshow(diff, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        fig.colorbar(image, ax=right, shrink=0.8)
        if worst is not None:
            right.add_patch(Rectangle((worst[1] - 0.5, worst[0] - 0.5), 1, 1, fill=False, ec="C3", lw=2.5, gid="worst"))
        right.set_xlabel("column")
        right.set_ylabel("row")
    else:
        idx = np.arange(diff.size)
        right.axhline(0, color="0.4", lw=0.8)
        right.vlines(idx, 0, np.nan_to_num(diff), color="C0", lw=1.5)
        right.plot(idx, diff, "o", color="C0", ms=4)
        if worst is not None:
            right.plot(worst[0], diff[worst], "o", ms=12, mfc="none", mec="C3", mew=2, gid="worst")
        right.set_xlabel("entry")
        right.grid(True, alpha=0.3)
    right.set_title("analytic − numerical")
    verdict = "ok" if check.passed else "WRONG"
    fig.suptitle(f"{check.name} {check.shape}: max relative error {check.max_rel_error:.1e} ({verdict})")
    return fig  # type: ignore[return-value]  # a SubFigure only when the caller drew into one


def digits(X: ArrayLike, y: ArrayLike, n: int = 16, ax: Axes | None = None) -> Axes:
    """The first ``n`` digit images in a grid, each with its label above it.

    Parameters
    ----------
    X : array (N, 64) or (N, 8, 8)
        Pixel intensities (0..1 from :func:`course.data.load_digits`, or 0..16).
    y : array (N,)
        The labels printed above the images.
    n : int
        How many to show (at most N).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).reshape(-1)
    if X.ndim == 2 and X.shape[1] == 64:
        X = X.reshape(-1, 8, 8)
    if X.ndim != 3 or X.shape[1:] != (8, 8) or len(X) != len(y):
        raise ValueError(f"digits expects X (N, 64) or (N, 8, 8) and y (N,), got {X.shape} and {y.shape}")
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = min(int(n), len(X))
    ncols = min(n, 8)
    nrows = math.ceil(n / ncols)
    gap, label_h = 1, 3  # pixels between tiles, and above each tile for its label
    tile_w, tile_h = 8 + gap, 8 + label_h
    mosaic = np.full((nrows * tile_h, ncols * tile_w - gap), np.nan)
    for i in range(n):
        r, c = divmod(i, ncols)
        top, left = r * tile_h + label_h, c * tile_w
        mosaic[top : top + 8, left : left + 8] = X[i]
    ax = _axes(ax, figsize=(0.9 * ncols, 0.2 + 1.25 * nrows))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    ax.imshow(mosaic, cmap=cmap, vmin=0.0, vmax=max(float(np.nanmax(X[:n])), 1e-12), interpolation="nearest")
    for i in range(n):
        r, c = divmod(i, ncols)
        ax.add_patch(
            Rectangle(
                (c * tile_w - 0.5, r * tile_h + label_h - 0.5),
                8,
                8,
                fill=False,
                ec="0.75",
                lw=0.6,
                clip_on=False,
            )
        )
        ax.text(
            c * tile_w + 3.5,
            r * tile_h + label_h - 1.0,
            str(y[i]),
            ha="center",
            va="bottom",
            fontsize=10,
            color="C3",
            fontweight="bold",
        )
    ax.set_axis_off()
    return ax


def templates(W: ArrayLike, titles: Sequence[str] | None = None, ncols: int = 10, size: float = 0.9) -> Figure:
    """The columns of a weight matrix W (64, K) as K images of 8×8 pixels, one panel each.

    Each panel has its own symmetric colour scale (red positive, blue negative, white 0), so
    the picture shows the *pattern* a unit or class responds to, not its overall size.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != 64:
        raise ValueError(f"templates expects W of shape (64, K), one 8x8 template per column, got {W.shape}")
    k = W.shape[1]
    if titles is not None and len(titles) != k:
        raise ValueError(f"{k} templates but {len(titles)} titles")
    ncols = min(ncols, k)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < k:
            limit = max(float(np.abs(W[:, i]).max()), 1e-12)
            ax.imshow(W[:, i].reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize="small")
    return fig


def show(fig: Figure | None = None, colors: int = 128) -> None:
    """Display ``fig`` (by default the current figure) in a notebook as a PNG of ``colors`` colours, and close it.

    A plot drawn with a few colours looks the same with a 128-colour palette and its PNG is
    several times smaller, which keeps the stored notebooks small. Outside IPython it does
    what ``plt.show()`` does.
    """
    import io

    fig = plt.gcf() if fig is None else fig
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover - IPython ships with Jupyter
        plt.show()
        return
    if get_ipython() is None:
        plt.show()
        return
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)
    small = io.BytesIO()
    PILImage.open(buffer).convert("RGB").quantize(colors=colors).save(small, format="png", optimize=True)
    display(Image(small.getvalue()))
