"""Can a numerical "backward" finish a large case within the grader's CPU budget?

For the large case of every exercise whose grade relies on size, this prints side by side the
CPU seconds of the analytic backward (the reference's forward + backward) and of each
finite-difference or complex-step scheme: the passes the scheme needs times the CPU cost of
one pass, measured here (a median of a few passes; running 100 s schemes to the end would
tell nothing more). Schemes:

* **per entry**: centred differences, two forward passes per entry of every input;
* **colour (fd)**: forward differences on a colouring of the Jacobian (Curtis, Powell and Reid
  1974): entries that no output shares are perturbed together, so one pass gives one
  derivative per output; Linear's dL/dx needs one pass per input column (the rows are
  independent), dL/dW one per row of W (each output column reads one column of W), dL/db one;
  a per-example loss needs one pass per class. Plus one pass at x. Forward differences are
  exact for a function that is linear in what is perturbed, so they are the cheapest honest
  estimate of this family;
* **colour (complex)**: the same colouring, one complex pass per colour (no pass at x).

Usage::

    python benchmarks/bench_numerical.py            # every large case, ~30 s
    python benchmarks/bench_numerical.py --budget 20

CPU time is ``time.process_time`` (all threads), which is what RLIMIT_CPU counts in the
checking run. It always exits 0: it measures, it does not test.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The checking run's BLAS is single-threaded (autograder/sandbox/bubblewrap.py); so is this measurement.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import course.exercises  # noqa: E402,F401 - registers the catalogue
from course import layers as L  # noqa: E402
from course import losses as F  # noqa: E402
from course.activations import log_softmax  # noqa: E402
from course.exercises.base import encode_outputs, get, judge_case  # noqa: E402
from course.network import TwoLayerNet  # noqa: E402


def cpu(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median CPU seconds of ``fn()`` over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


@dataclass
class Scheme:
    name: str
    passes: int
    seconds_per_pass: float

    @property
    def seconds(self) -> float:
        return self.passes * self.seconds_per_pass


@dataclass
class Row:
    exercise: str
    case: str
    analytic: float
    schemes: list[Scheme]
    judge: float = 0.0


def large_case(name: str):
    return get(name).cases(np.random.default_rng(0), False)[-1]


def judge_seconds(name: str, reference: object) -> float:
    """CPU seconds of the trusted judge on the large case, given the reference's outputs."""
    exercise = get(name)
    case = large_case(name)
    encoded = encode_outputs(exercise.run(reference, case))
    start = time.process_time()
    verdict = judge_case(exercise, case, encoded, [])
    seconds = time.process_time() - start
    if not verdict.passed:
        print(f"warning: the reference fails {name}:\n{verdict.message()}")
    return seconds


def linear_row(name: str, cls: type) -> Row:
    case = large_case(name)
    layer = get(name)._layer(cls, case)
    x, g = case.arrays["x"], case.arrays["grad_out"]
    n, d = x.shape
    m = g.shape[1]

    def analytic() -> None:
        layer.forward(x)
        layer.backward(g)

    W, b = layer.W.data, layer.b.data
    xc = x + 1e-20j
    one = cpu(lambda: layer.forward(x))
    complex_pass = cpu(lambda: xc @ W + b, 3)
    entries = n * d + d * m + m
    return Row(
        name,
        case.label,
        cpu(analytic),
        [
            Scheme("per entry, centred", 2 * entries, one),
            Scheme("colour (fd): 1 + D + D + 1", 2 * d + 2, one),
            Scheme("colour (complex): D + D + 1", 2 * d + 1, complex_pass),
        ],
    )


def maxout_row() -> Row:
    name = "neurons.Maxout.backward"
    case = large_case(name)
    layer = get(name)._layer(L.Maxout, case)
    x, g = case.arrays["x"], case.arrays["grad_out"]
    n, d = x.shape
    k, _, m = layer.W.data.shape

    def analytic() -> None:
        layer.forward(x)
        layer.backward(g)

    W, b = layer.W.data, layer.b.data
    flat = W.transpose(1, 0, 2).reshape(d, k * m)  # the pieces side by side: one matrix product
    xc = x + 1e-20j
    # the library's forward is an einsum; an own forward with one matrix product is faster
    one = min(cpu(lambda: layer.forward(x)), cpu(lambda: ((x @ flat).reshape(n, k, m) + b).max(axis=1)))
    complex_pass = cpu(lambda: (xc @ flat).reshape(n, k, m) + b, 3)
    entries = n * d + k * d * m + k * m
    return Row(
        name,
        case.label,
        cpu(analytic),
        [
            Scheme("per entry, centred", 2 * entries, one),
            Scheme("colour (fd): 1 + D + kD + k", 1 + d + k * d + k, one),
            Scheme("colour (complex): D + kD + k", d + k * d + k, complex_pass),
        ],
    )


def per_example_loss_row(name: str, cls: type) -> Row:
    case = large_case(name)
    pred, target = case.arrays["pred"], case.arrays["target"]
    n, c = pred.shape
    loss = cls()

    def analytic() -> None:
        loss.forward(pred, target)
        loss.backward()

    rows = np.arange(n)
    labels = target.astype(np.int64)
    if cls is F.SoftmaxCrossEntropy:

        def own(p: np.ndarray) -> np.ndarray:  # the student's own vector of per-example losses
            return -log_softmax(p, axis=1)[rows, labels]

        def own_complex(p: np.ndarray) -> np.ndarray:
            shifted = p - p.real.max(axis=1, keepdims=True)
            return -(shifted[rows, labels] - np.log(np.exp(shifted).sum(axis=1)))
    else:

        def own(p: np.ndarray) -> np.ndarray:
            margins = np.maximum(0.0, p - p[rows, labels][:, None] + 1.0)
            margins[rows, labels] = 0.0
            return margins.sum(axis=1)

        own_complex = None
    one_row = cpu(lambda: loss.forward(pred[:1], target[:1]), 50)
    schemes = [
        Scheme("per entry, library forward of one example, centred", 2 * n * c, one_row),
        Scheme("colour (fd), own per-example forward: 1 + C", 1 + c, cpu(lambda: own(pred))),
    ]
    if own_complex is not None:
        pc = pred + 1e-20j
        schemes.append(Scheme("colour (complex), own per-example forward: C", c, cpu(lambda: own_complex(pc), 3)))
    return Row(name, case.label, cpu(analytic), schemes)


def mlp_row() -> Row:
    name = "mlp.TwoLayerNet.grads"
    case = large_case(name)
    a = case.arrays
    net = get(name)._network(TwoLayerNet, a)
    X, y, reg = a["X"], a["y"], case.config["reg"]
    n, d = X.shape
    h = a["W1"].shape[1]
    W1, b1 = a["W1"], a["b1"]
    first = cpu(lambda: X @ W1 + b1)
    whole = cpu(lambda: net.loss(X, y, reg=reg)[0])
    return Row(
        name,
        case.label,
        cpu(lambda: net.loss(X, y, reg=reg)),
        [
            Scheme("per entry of W1, whole loss, centred", 2 * d * h, whole),
            Scheme("layer by layer, colour (fd) of X W1 + b1: 1 + D", 1 + d, first),
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=20.0, help="CPU seconds a case may use (default 20)")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, load {os.getloadavg()[0]:.1f}"
    )
    rows = [
        linear_row("layers.Linear.backward", L.Linear),
        linear_row("layers.LinearSigmoid.backward", L.LinearSigmoid),
        maxout_row(),
        per_example_loss_row("losses.SoftmaxCrossEntropy.backward", F.SoftmaxCrossEntropy),
        per_example_loss_row("losses.MulticlassSVM.backward", F.MulticlassSVM),
        mlp_row(),
    ]
    print(f"CPU seconds per case (budget {args.budget:g} s); margin = scheme / budget\n")
    references = [L.Linear, L.LinearSigmoid, L.Maxout, F.SoftmaxCrossEntropy, F.MulticlassSVM, TwoLayerNet]
    for row, reference in zip(rows, references, strict=True):
        row.judge = judge_seconds(row.exercise, reference)
    for row in rows:
        print(f"{row.exercise}: {row.case}")
        print(f"  {'analytic forward + backward':58s} {row.analytic:10.3f} s")
        print(f"  {'the judge (trusted, sampled entries)':58s} {row.judge:10.3f} s")
        for s in row.schemes:
            margin = s.seconds / args.budget
            print(
                f"  {s.name:58s} {s.seconds:10.1f} s = {s.passes:>9,} x {s.seconds_per_pass * 1e3:7.2f} ms"
                f"   margin {margin:7.1f}x"
            )
        print()
    print(f"load {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
