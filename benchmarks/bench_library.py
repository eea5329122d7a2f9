"""How much does the ``course`` library cost compared with plain numpy?

Run from the repository root::

    python benchmarks/bench_library.py                  # ~20 s on an idle 2-core machine
    python benchmarks/bench_library.py --quick          # ~3 s, fewer repeats (CI smoke test)
    python benchmarks/bench_library.py --profile        # also cProfile the course training step
    python benchmarks/bench_library.py --glibc-defaults # leave malloc alone (see keep_freed_memory)

Two benchmarks, each measured in this one run on this machine:

1. One training step of the lecture's "neural net in 20 lines" (N=64, D_in=1000, H=100,
   D_out=10, sigmoid, squared loss, SGD with lr 1e-4), written once as plain numpy and once
   through ``course`` (Sequential(Linear, Sigmoid, Linear), MSE, SGD). The plain side is the
   lecture's code with the two things that make it the same model as course's: biases, and
   course's MSE (mean over the batch of ½‖ŷ − y‖², so dL/dŷ = (ŷ − y) / N). Target: course
   costs at most 10 % more. A second table takes the plain step towards course's exact
   arithmetic one change at a time, to show where the difference goes.
2. One training step of a large-batch MLP (N=1024, 784-256-10, ReLU, softmax cross-entropy,
   SGD) through ``course``, as GFLOP/s next to numpy's own matmul GFLOP/s. Target: at least
   70 % of the matmul throughput.

Before timing, one step of every variant is checked against one step of course from the same
starting weights (np.allclose on the updated weights, and on the updates themselves), so the
sides being compared really compute the same thing. A mismatch stops the run with exit code 1;
a missed target does not (exit code 0: this is a benchmark, not a test).

Timing: every variant is warmed up, then timed as ``repeats`` samples of ``inner`` back-to-back
calls each (time.perf_counter), the variants of one benchmark interleaved so that a burst of
load on a shared machine hits all of them. We report the median per call and, as the spread,
half the interquartile range as a percentage of the median. Ratios are medians of the
per-sample ratios (course sample / plain sample taken next to each other). Unless told
otherwise, malloc is first set to keep freed memory (see :func:`keep_freed_memory`), so that
page faults on fresh temporaries do not decide the comparison; page faults per step are shown.
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import os
import platform
import pstats
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import course
from course import MSE, SGD, Linear, ReLU, Sequential, Sigmoid, SoftmaxCrossEntropy
from course.losses import Loss

Step = Callable[[], object]

NN20 = dict(N=64, D_in=1000, H=100, D_out=10, lr=1e-4)
MLP = dict(N=1024, D_in=784, H=256, D_out=10, lr=1e-2)

OVERHEAD_TARGET = 0.10  # course step at most 10 % slower than plain numpy
THROUGHPUT_TARGET = 0.70  # course MLP step at least 70 % of numpy's matmul GFLOP/s


# ----------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------


@dataclass
class Samples:
    """Seconds per call, one value per sample; page faults per call over all samples."""

    values: np.ndarray
    faults: float = float("nan")

    @property
    def median(self) -> float:
        return float(np.median(self.values))

    @property
    def spread(self) -> float:
        """Half the interquartile range, relative to the median."""
        q1, q3 = np.percentile(self.values, [25, 75])
        return float((q3 - q1) / 2 / np.median(self.values))


def measure(steps: dict[str, Step], repeats: int, sample_seconds: float) -> dict[str, Samples]:
    """Time each step: warm up, pick ``inner`` so one sample lasts ~sample_seconds, then take
    ``repeats`` samples per step, interleaving the steps (rotating their order every round)."""
    inner = {}
    for name, step in steps.items():
        for _ in range(3):
            step()
        t0 = time.perf_counter()
        step()
        one = time.perf_counter() - t0
        inner[name] = max(1, round(sample_seconds / max(one, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in steps}
    faults = dict.fromkeys(steps, 0)
    names = list(steps)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            step, n = steps[name], inner[name]
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            for _ in range(n):
                step()
            times[name].append((time.perf_counter() - t0) / n)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    return {name: Samples(np.array(ts), faults[name] / (repeats * inner[name])) for name, ts in times.items()}


def keep_freed_memory() -> str:
    """Ask glibc's malloc to keep freed memory instead of handing it back to the kernel.

    By default glibc returns a large freed block to the kernel (munmap, or trimming the top
    of the heap), so the next temporary of that size (dW1 is 800 kB here) is fresh memory
    and every 4 kB page of it costs a page fault on first touch. On this VM that is
    hundreds of faults, often more than the arithmetic, per step; and whether a given
    variant gets them depends on the order of its allocations and frees, so it makes
    comparisons random. Fixed thresholds turn that off for everyone alike.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's <malloc.h>
        ok = libc.mallopt(m_trim_threshold, 1 << 30) and libc.mallopt(m_mmap_threshold, 32 << 20)
    except (OSError, AttributeError):
        return "default (not glibc: mallopt unavailable)"
    if not ok:
        return "default (mallopt refused)"
    return "glibc mallopt: trim threshold 1 GiB, mmap threshold 32 MiB (freed memory is reused)"


def paired_ratio(a: Samples, b: Samples) -> Samples:
    """a / b sample by sample (both were taken in the same rounds)."""
    return Samples(a.values / b.values)


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs" if seconds < 0.01 else f"{seconds * 1e3:,.2f} ms"


def fmt_spread(s: Samples) -> str:
    return f"±{100 * s.spread:.0f} %" if s.spread >= 0.005 else "±<1 %"


# ----------------------------------------------------------------------------------------
# Checking that two steps compute the same thing
# ----------------------------------------------------------------------------------------


def check_same_step(label: str, before: list[np.ndarray], ours: list[np.ndarray], reference: list[np.ndarray]) -> None:
    """Stop the run unless ``ours`` and ``reference`` (updated weights, in the same order)
    agree, both as weights (np.allclose) and as updates w_after - w_before (relative error
    of the whole update below 1e-9: np.allclose alone would pass tiny, wrong updates)."""
    for i, (w0, a, b) in enumerate(zip(before, ours, reference, strict=True)):
        update_a, update_b = a - w0, b - w0
        scale = max(float(np.linalg.norm(update_b)), 1e-300)
        rel = float(np.linalg.norm(update_a - update_b)) / scale
        if not (np.allclose(a, b) and rel < 1e-9):
            sys.exit(
                f"bench_library: '{label}' does not compute the same step as course: "
                f"parameter {i} {a.shape} differs (relative error of the update {rel:.2e}); "
                "the timings would not compare like with like"
            )


# ----------------------------------------------------------------------------------------
# Benchmark 1: the lecture's "neural net in 20 lines"
# ----------------------------------------------------------------------------------------


def nn20_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    """x (N, D_in), y (N, D_out), w1 (D_in, H), w2 (H, D_out): randn, as in the lecture."""
    rng = np.random.default_rng(seed)
    n, d_in, h, d_out = NN20["N"], NN20["D_in"], NN20["H"], NN20["D_out"]
    return (
        rng.standard_normal((n, d_in)),
        rng.standard_normal((n, d_out)),
        rng.standard_normal((d_in, h)),
        rng.standard_normal((h, d_out)),
    )


def nn20_lecture(x: np.ndarray, y: np.ndarray, w1: np.ndarray, w2: np.ndarray, lr: float) -> Step:
    """The slide, line for line: no biases, sum of squares. Not the same model as course's
    (no biases, gradient 2(ŷ − y) instead of (ŷ − y)/N): timed for reference only."""

    def step() -> float:
        h = 1.0 / (1.0 + np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        loss = np.square(y_pred - y).sum()
        dy_pred = 2.0 * (y_pred - y)
        dw2 = h.T.dot(dy_pred)
        dh = dy_pred.dot(w2.T)
        dw1 = x.T.dot(dh * h * (1 - h))
        w1[...] -= lr * dw1  # [...]: update the array in place, as `w1 -= ...` at top level
        w2[...] -= lr * dw2
        return loss

    return step


def nn20_plain(
    x: np.ndarray,
    y: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    lr: float,
    *,
    stable_sigmoid: bool = False,
    input_grad: bool = False,
    accumulate: list[np.ndarray] | None = None,
) -> Step:
    """The lecture's step with biases and course's MSE: the same model as course's.

    The keywords move it, one at a time, to course's exact arithmetic:
    ``stable_sigmoid``: course.activations.sigmoid's overflow-free formula;
    ``input_grad``: also compute dL/dx = dz · w1ᵀ, which course's first Linear skips
    (``input_grad=False``): shown for reference;
    ``accumulate``: a list of grad arrays (w1, b1, w2, b2) zeroed then added into, as
    optimizer.zero_grad() and ``p.grad +=`` do.
    """
    n = x.shape[0]

    def step() -> float:
        z = x.dot(w1) + b1
        if stable_sigmoid:
            e = np.exp(-np.abs(z))
            h = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        else:
            h = 1.0 / (1.0 + np.exp(-z))
        y_pred = h.dot(w2) + b2
        diff = y_pred - y
        loss = float(0.5 * np.sum(diff**2) / n)
        dy_pred = diff / n
        dh = dy_pred.dot(w2.T)
        dz = dh * h * (1.0 - h)
        if input_grad:
            dz.dot(w1.T)
        if accumulate is None:
            grads = (x.T.dot(dz), dz.sum(axis=0), h.T.dot(dy_pred), dy_pred.sum(axis=0))
        else:
            for g in accumulate:
                g[...] = 0.0
            g_w1, g_b1, g_w2, g_b2 = accumulate
            g_w2 += h.T.dot(dy_pred)
            g_b2 += dy_pred.sum(axis=0)
            g_w1 += x.T.dot(dz)
            g_b1 += dz.sum(axis=0)
            grads = accumulate
        for w, g in zip((w1, b1, w2, b2), grads, strict=True):
            w -= lr * g
        return loss

    return step


def course_step(model: Sequential, loss_fn: Loss, optimizer: SGD, x: np.ndarray, y: np.ndarray) -> Step:
    """One training step as a course user writes it."""

    def step() -> float:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        optimizer.step()
        return loss

    return step


def nn20_course(
    x: np.ndarray, y: np.ndarray, w1: np.ndarray, w2: np.ndarray, lr: float
) -> tuple[Step, list[np.ndarray]]:
    """The course model with the lecture's weights copied in; returns (step, parameter arrays)."""
    model = Sequential(Linear(w1.shape[0], w1.shape[1], input_grad=False), Sigmoid(), Linear(w2.shape[0], w2.shape[1]))
    model[0].W.data[...] = w1
    model[2].W.data[...] = w2
    optimizer = SGD(model.parameters(), lr=lr)
    return course_step(model, MSE(), optimizer, x, y), [p.data for p in model.parameters()]


def nn20_variants(seed: int = 0) -> dict[str, tuple[Step, list[np.ndarray]]]:
    """Every variant of benchmark 1, each with its own copy of the starting weights."""
    x, y, w1, w2 = nn20_data(seed)
    lr, h, d_out = NN20["lr"], NN20["H"], NN20["D_out"]

    def weights() -> list[np.ndarray]:
        return [w1.copy(), np.zeros(h), w2.copy(), np.zeros(d_out)]

    def plain(**kw) -> tuple[Step, list[np.ndarray]]:
        ws = weights()
        if kw.pop("accumulate", False):
            kw["accumulate"] = [np.zeros_like(w) for w in ws]
        return nn20_plain(x, y, *ws, lr, **kw), ws

    lw1, lw2 = w1.copy(), w2.copy()
    return {
        "lecture verbatim": (nn20_lecture(x, y, lw1, lw2, lr), [lw1, lw2]),
        "plain": plain(),
        "+ stable sigmoid": plain(stable_sigmoid=True),
        "+ zero_grad and grad +=": plain(stable_sigmoid=True, accumulate=True),
        "course": nn20_course(x, y, w1, w2, lr),
        # What Linear(..., input_grad=False) saves course's first layer: one more large matmul.
        "(+ dL/dx of the first layer)": plain(stable_sigmoid=True, input_grad=True, accumulate=True),
    }


def nn20_tiny() -> dict[str, Step]:
    """The plain and course steps on a 1-1-1 network with N=1: almost pure Python cost."""
    rng = np.random.default_rng(0)
    x, y, w1, w2 = (rng.standard_normal((1, 1)) for _ in range(4))
    return {
        "plain": nn20_plain(x, y, w1.copy(), np.zeros(1), w2.copy(), np.zeros(1), NN20["lr"]),
        "course": nn20_course(x, y, w1, w2, NN20["lr"])[0],
    }


def check_nn20() -> None:
    """One step of every plain variant (not the slide's own) must give course's weights."""
    variants = nn20_variants()
    before = [w.copy() for w in variants["course"][1]]
    reference = variants["course"]
    reference[0]()
    for name, (step, ws) in variants.items():
        if name in ("course", "lecture verbatim"):
            continue
        step()
        check_same_step(f"nn-in-20-lines {name}", before, ws, reference[1])


# ----------------------------------------------------------------------------------------
# Benchmark 2: a large-batch MLP, in GFLOP/s
# ----------------------------------------------------------------------------------------


def mlp_flops() -> float:
    """3 matmuls per Linear (forward x·W, backward xᵀ·g and g·Wᵀ), each 2·N·in·out FLOPs,
    but 2 for the first layer, which skips dL/dX (``Linear(..., input_grad=False)``)."""
    n, sizes = MLP["N"], (MLP["D_in"], MLP["H"], MLP["D_out"])
    pairs = list(zip(sizes[:-1], sizes[1:], strict=False))
    return sum((2 if i == 0 else 3) * 2.0 * n * a * b for i, (a, b) in enumerate(pairs))


def mlp_variants(seed: int = 0) -> dict[str, tuple[Step, list[np.ndarray]]]:
    """course's MLP step, the same arithmetic in plain numpy (no dL/dX for the data), and the
    bare five matmuls of the step (a lower bound on its time)."""
    rng = np.random.default_rng(seed)
    n, d_in, h, d_out, lr = MLP["N"], MLP["D_in"], MLP["H"], MLP["D_out"], MLP["lr"]
    x = rng.standard_normal((n, d_in))
    labels = rng.integers(0, d_out, n)

    model = Sequential(Linear(d_in, h, rng=rng, input_grad=False), ReLU(), Linear(h, d_out, rng=rng))
    start = [p.data.copy() for p in model.parameters()]
    optimizer = SGD(model.parameters(), lr=lr)
    course_params = [p.data for p in model.parameters()]

    ws = [w.copy() for w in start]
    gs = [np.zeros_like(w) for w in ws]
    rows = np.arange(n)

    def plain() -> float:
        w1, b1, w2, b2 = ws
        for g in gs:
            g[...] = 0.0
        z1 = x @ w1 + b1
        a1 = np.maximum(z1, 0.0)
        s = a1 @ w2 + b2
        # course.activations.log_softmax: log-sum-exp with the winner's e^0 = 1 taken out (log1p)
        winner = s.argmax(axis=1)[:, None]
        shifted = s - np.take_along_axis(s, winner, axis=1)
        others = np.exp(shifted)
        np.put_along_axis(others, winner, 0.0, axis=1)
        log_p = shifted - np.log1p(others.sum(axis=1, keepdims=True))
        loss = float(-np.mean(log_p[rows, labels]))
        ds = np.exp(log_p)
        ds[rows, labels] -= 1.0
        ds = ds / n
        gs[2] += a1.T @ ds
        gs[3] += ds.sum(axis=0)
        dz1 = (ds @ w2.T) * (z1 > 0)
        gs[0] += x.T @ dz1
        gs[1] += dz1.sum(axis=0)
        for w, g in zip(ws, gs, strict=True):
            w -= lr * g
        return loss

    mw1, mw2 = start[0].copy(), start[2].copy()
    g1, g2 = rng.standard_normal((n, h)), rng.standard_normal((n, d_out))
    a1 = rng.standard_normal((n, h))

    def matmuls_only() -> None:
        x @ mw1, a1 @ mw2, a1.T @ g2, g2 @ mw2.T, x.T @ g1

    return {
        "course": (course_step(model, SoftmaxCrossEntropy(), optimizer, x, labels), course_params),
        "plain": (plain, ws),
        "matmuls only": (matmuls_only, []),
    }


def matmul_references(seed: int = 1) -> dict[str, tuple[Step, float]]:
    """numpy matmuls to compare with: (step, FLOPs)."""
    rng = np.random.default_rng(seed)
    n, d_in, h = MLP["N"], MLP["D_in"], MLP["H"]
    a, b = rng.standard_normal((n, d_in)), rng.standard_normal((d_in, h))
    sq = rng.standard_normal((1024, 1024))
    return {
        f"matmul {n}x{d_in} @ {d_in}x{h}": (lambda: a @ b, 2.0 * n * d_in * h),
        "matmul 1024x1024 @ 1024x1024": (lambda: sq @ sq, 2.0 * 1024**3),
    }


def check_mlp() -> None:
    """One plain-numpy MLP step must give course's weights."""
    variants = mlp_variants()
    course_run, course_params = variants["course"]
    before = [w.copy() for w in course_params]
    course_run()
    plain, ws = variants["plain"]
    plain()
    check_same_step("MLP plain numpy", before, ws, course_params)


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for text in f:
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
    except OSError:
        cpu = platform.processor() or cpu
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"CPU        {cpu}, {os.cpu_count()} logical cores ({usable} usable by this process)",
        f"Python     {platform.python_version()}, numpy {np.__version__}, course {course.__version__}",
    ]
    blas = "unknown"
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
        if "openblas configuration" in deps:
            blas += f" ({deps['openblas configuration'].split()[-3]})"
    except Exception:  # older numpy: show_config has no mode
        pass
    lines.append(f"BLAS       {blas}")
    try:
        from threadpoolctl import threadpool_info  # optional, never installed for this

        pools = [f"{p['internal_api']} {p['version']}: {p['num_threads']} threads" for p in threadpool_info()]
        lines.append("threads    " + "; ".join(pools))
    except ImportError:
        env = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ}
        lines.append(f"threads    BLAS default (threadpoolctl not installed; env {env or 'unset'})")
    if hasattr(os, "getloadavg"):
        lines.append(f"load       {load()} (1, 5, 15 min) at start; the other processes' work slows this one")
    return lines


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def row(name: str, plain: str, course_: str, ratio: str, target: str, ok: bool) -> str:
    return f"{name:<40} {plain:>15} {course_:>15} {ratio:>9}   {target:<9} {verdict(ok)}"


def timed(s: Samples) -> str:
    return f"{fmt_time(s.median)} {fmt_spread(s)}"


def line(label: str, s: Samples, extra: str = "") -> str:
    """One row of a breakdown: median, spread, best sample, page faults per step."""
    return (
        f"   {label:<30} {fmt_time(s.median):>9} {fmt_spread(s):>6}  best {fmt_time(s.values.min()):>9}"
        f"  {s.faults:>4.0f} faults{extra}"
    )


def run(quick: bool, glibc_defaults: bool) -> None:
    repeats1, repeats2 = (5, 3) if quick else (41, 15)
    sample = 0.01 if quick else 0.025
    allocator = "glibc defaults (--glibc-defaults)" if glibc_defaults else keep_freed_memory()

    print("machine")
    for text in machine():
        print("  " + text)
    print(f"  malloc     {allocator}")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > (os.cpu_count() or 1) / 2:
        print(
            "  BUSY       other processes are running: absolute times are inflated and noisy; the\n"
            "             ratios (samples taken side by side) hold up better; check their spread"
        )
    print()

    check_nn20()
    check_mlp()
    print("checked: one step of each plain-numpy variant gives the same updated weights as course's\n")

    nn20 = {name: step for name, (step, _) in nn20_variants().items()}
    nn20 |= {f"{name}, 1-1-1 network": step for name, step in nn20_tiny().items()}
    t1 = measure(nn20, repeats1, sample)

    refs = matmul_references()
    mlp = {name: step for name, (step, _) in mlp_variants().items()}
    t2 = measure(mlp | {name: step for name, (step, _) in refs.items()}, repeats2, 2 * sample)
    flops = {name: mlp_flops() for name in mlp} | {name: f for name, (_, f) in refs.items()}
    gflops = {name: Samples(flops[name] / t.values / 1e9) for name, t in t2.items()}

    # -- the table ------------------------------------------------------------------------
    overhead = paired_ratio(t1["course"], t1["plain"])
    ref = next(iter(refs))
    fraction = paired_ratio(gflops["course"], gflops[ref])
    n, d_in, h, d_out = NN20["N"], NN20["D_in"], NN20["H"], NN20["D_out"]
    name1 = f"nn-in-20-lines step ({n}x{d_in}x{h}x{d_out})"
    n, d_in, h, d_out = MLP["N"], MLP["D_in"], MLP["H"], MLP["D_out"]
    name2 = f"MLP step {n}x{d_in}-{h}-{d_out} (GFLOP/s)"
    print(f"{'benchmark':<40} {'plain numpy':>15} {'course':>15} {'ratio':>9}   target")
    print(
        row(
            name1,
            timed(t1["plain"]),
            timed(t1["course"]),
            f"{100 * (overhead.median - 1):+.1f} %",
            f"<= +{100 * OVERHEAD_TARGET:.0f} %",
            overhead.median - 1 <= OVERHEAD_TARGET,
        )
    )
    print(
        row(
            name2,
            f"{gflops[ref].median:.1f} {fmt_spread(gflops[ref])}",
            f"{gflops['course'].median:.1f} {fmt_spread(gflops['course'])}",
            f"{100 * fraction.median:.1f} %",
            f">= {100 * THROUGHPUT_TARGET:.0f} %",
            fraction.median >= THROUGHPUT_TARGET,
        )
    )
    print(
        f"  ratio, row 1: course / plain - 1 (spread ±{100 * overhead.spread:.0f} %); row 2: course's "
        f"GFLOP/s / numpy's {ref.removeprefix('matmul ')} matmul's (spread ±{100 * fraction.spread:.0f} %)"
    )

    # -- where the difference goes ----------------------------------------------------------
    print("\n1. nn-in-20-lines: from the plain step to course's, one change at a time")
    notes = {
        "lecture verbatim": "  the slide itself (no biases, sum of squares: not course's model)",
        "plain": "  the slide + biases + course's MSE (row 1)",
        "+ zero_grad and grad +=": "  = course's arithmetic, no Python layers",
    }
    for name in nn20:
        if name.endswith("1-1-1 network"):
            continue
        change = paired_ratio(t1[name], t1["plain"]).median - 1
        print(line(name, t1[name], f" {100 * change:+6.1f} %{notes.get(name, '')}"))
    same_math = paired_ratio(t1["course"], t1["+ zero_grad and grad +="])
    fixed = t1["course, 1-1-1 network"].median - t1["plain, 1-1-1 network"].median
    print(
        f"   course on top of identical arithmetic: {100 * (same_math.median - 1):+.1f} % "
        f"(±{100 * same_math.spread:.0f} %); its fixed Python cost per step, from a 1-1-1 network: "
        f"{fmt_time(fixed)} ({fmt_time(t1['course, 1-1-1 network'].median)} vs "
        f"{fmt_time(t1['plain, 1-1-1 network'].median)})"
    )

    print(f"\n2. MLP step: {mlp_flops() / 1e9:.3f} GFLOP counted (2·N·in·out a matmul; 3 a Linear, 2 the first)")
    labels = {
        "course": "course step",
        "plain": "plain numpy, same arithmetic",
        "matmuls only": "the step's 5 matmuls alone",
    }
    for name in t2:
        print(line(labels.get(name, name), t2[name], f"  {gflops[name].median:6.1f} GFLOP/s"))
    if hasattr(os, "getloadavg"):
        print(f"\nload at the end: {load()} (1, 5, 15 min)")
    print(
        f"{repeats1} (1.) and {repeats2} (2.) interleaved samples per variant; ± = half the "
        "interquartile range, as % of the median; ratios are medians of paired samples; "
        "faults = page faults per step"
    )


def profile(seconds: float) -> None:
    """cProfile course steps of benchmark 1 for about ``seconds`` and print where the time goes.

    numpy's operators are not function calls, so their time shows up in the layer method
    that uses them (Linear.forward holds x @ W, for instance).
    """
    step = nn20_variants()["course"][0]
    step()
    profiler = cProfile.Profile()
    steps, t0 = 0, time.perf_counter()
    profiler.enable()
    while steps < 20 or time.perf_counter() - t0 < seconds:
        step()
        steps += 1
    profiler.disable()
    print(f"\ncProfile of {steps} course nn-in-20-lines steps (sorted by own time):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the course step")
    parser.add_argument(
        "--glibc-defaults",
        action="store_true",
        help="leave malloc as it is (freed memory goes back to the kernel: page-fault noise)",
    )
    args = parser.parse_args(argv)
    run(args.quick, args.glibc_defaults)
    if args.profile:
        profile(0.5 if args.quick else 3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
