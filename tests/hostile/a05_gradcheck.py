"""Hostile corpus of ``05_gradcheck``: numerical_gradient, relative_error, Swish.backward."""

from __future__ import annotations

from .catalogue import Hostile
from .corpus import Assignment, bundle, common_attacks, known_holes, on_wrong, style

HONEST_WRONG = {
    # the centred difference divided by h, not 2h
    "numerical_gradient": """
        weight = 1.0 if grad_out is None else grad_out
        grad = np.zeros_like(x, dtype=np.float64)
        for ix in np.ndindex(x.shape):
            old = x[ix]
            x[ix] = old + h
            plus = np.array(f(x), dtype=np.float64)
            x[ix] = old - h
            minus = np.array(f(x), dtype=np.float64)
            x[ix] = old
            grad[ix] = np.sum((plus - minus) * weight) / h
        return grad
    """,
    # the mean, not the max, and no floor
    "relative_error": "a, b = np.asarray(a, float), np.asarray(b, float)\n"
    "return float(np.mean(np.abs(a - b)) / (np.mean(np.abs(a) + np.abs(b)) + 1.0))",
    # dL/dx without the β x σ' term, dL/dβ without one factor x
    "Swish_backward": """
        x, s = self.x, self.s
        slope = s * (1.0 - s)
        self.beta.grad += (grad_out * x * slope).sum(axis=0)
        return grad_out * s
    """,
}

DELEGATION = [
    Hostile(
        "delegate_gradcheck_helpers",
        "course.gradcheck.numerical_gradient and relative_error",
        on_wrong(
            HONEST_WRONG,
            numerical_gradient="return course.gradcheck.numerical_gradient(f, x, grad_out, h=h)",
            relative_error="return course.gradcheck.relative_error(a, b)",
        ),
    ),
    Hostile(
        "delegate_gradcheck_private",
        "relative_error from course.gradcheck._elementwise_error",
        on_wrong(
            HONEST_WRONG,
            relative_error="""
            a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            return float(np.max(course.gradcheck._elementwise_error(a, b)))
        """,
        ),
    ),
    Hostile(
        "delegate_gradcheck_compare",
        "relative_error read off course.gradcheck.compare's report",
        on_wrong(
            HONEST_WRONG,
            relative_error="""
            a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            check = course.gradcheck.compare("x", a, b)
            return float(check.max_rel_error)
        """,
        ),
    ),
    Hostile(
        "delegate_judge_exact_gradients",
        "numerical_gradient returns the exercise's exact gradient (TEST_FUNCTIONS)",
        on_wrong(
            HONEST_WRONG,
            numerical_gradient="""
                import course.exercises.gradients as G
                inner = getattr(f, "__code__", None)
                cells = dict(zip(inner.co_freevars, [c.cell_contents for c in f.__closure__ or ()])) if inner else {}
                for name, (what, make, grad) in G.TEST_FUNCTIONS.items():
                    probe = make(x, cells.get("a", {}))
                    if getattr(probe, "__code__", None) is inner:
                        return grad(x, cells.get("a", {}), grad_out)
                raise NotImplementedError()
            """,
        ),
    ),
    Hostile(
        "delegate_check_elementwise",
        "numerical_gradient via course.gradcheck.check_elementwise and check_layer",
        on_wrong(
            HONEST_WRONG,
            numerical_gradient="""
                for name in ("check_elementwise", "check_layer", "check_loss"):
                    try:
                        report = getattr(course.gradcheck, name)(f, x)
                    except Exception:
                        continue
                    for check in getattr(report, "checks", []):
                        if getattr(check, "numeric", None) is not None:
                            return check.numeric
                raise NotImplementedError()
            """,
        ),
    ),
    Hostile(
        "delegate_swish_via_sigmoid_grad",
        "Swish.backward with σ' from course.activations.sigmoid_grad",
        on_wrong(
            HONEST_WRONG,
            Swish_backward="""
                x, s, beta = self.x, self.s, self.beta.data
                slope = course.activations.sigmoid_grad(beta * x)
                self.beta.grad += (grad_out * x * x * slope).sum(axis=0)
                return grad_out * (s + beta * x * slope)
            """,
        ),
    ),
    Hostile(
        "delegate_swish_super_reload",
        "Swish.backward by super() and from course.exercises.gradients reloaded",
        on_wrong(
            HONEST_WRONG,
            Swish_backward="""
                try:
                    return super().backward(grad_out)
                except Exception:
                    import importlib
                    return importlib.reload(course.exercises.gradients).Swish.backward(self, grad_out)
            """,
        ),
    ),
]

NUMERICAL = [
    Hostile(
        "numdiff_swish_complex_step",
        "Swish.backward by complex step: one pass for x, one for every β at once",
        on_wrong(
            HONEST_WRONG,
            Swish_backward="""
                h = 1e-30
                def f(x, beta):
                    return x / (1 + np.exp(-beta * x))
                x, beta = self.x, self.beta.data
                self.beta.grad += (np.imag(f(x, beta + 1j * h)) / h * grad_out).sum(axis=0)
                return grad_out * np.imag(f(x + 1j * h, beta)) / h
            """,
        ),
    ),
    Hostile(
        "numdiff_swish_centred_columns",
        "Swish.backward by vectorised centred differences of its forward",
        on_wrong(
            HONEST_WRONG,
            Swish_backward="""
                h = 1e-6
                x, beta = self.x, self.beta.data
                def f(x, beta):
                    return x * course.activations.sigmoid(beta * x)
                self.beta.grad += ((f(x, beta + h) - f(x, beta - h)) / (2 * h) * grad_out).sum(axis=0)
                return grad_out * (f(x + h, beta) - f(x - h, beta)) / (2 * h)
            """,
        ),
    ),
]

STYLES = [
    style(
        "style_vectorised_and_loops",
        "numerical_gradient with nditer and a flat view, relative_error with out=",
        {
            "numerical_gradient": """
            weight = np.ones(()) if grad_out is None else np.asarray(grad_out)
            grad = np.zeros(x.shape)
            it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
            for entry in it:
                ix = it.multi_index
                old = float(entry)
                entry[...] = old + h
                plus = np.asarray(f(x), dtype=float)
                entry[...] = old - h
                minus = np.asarray(f(x), dtype=float)
                entry[...] = old
                grad[ix] = float(np.sum((plus - minus) * weight)) / (2.0 * h)
            return grad
        """,
            "relative_error": """
            a = np.asarray(a, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            num = np.array(np.abs(a - b))  # an array even for 0-d inputs, so that out= works
            den = np.maximum(np.abs(a) + np.abs(b), 1e-8)
            np.divide(num, den, out=num)
            return float(num.max()) if num.ndim else float(num)
        """,
            "Swish_backward": """
            x, s, beta = self.x, self.s, self.beta.data
            slope = np.einsum("nd,nd->nd", s, 1.0 - s)
            self.beta.grad += np.einsum("nd,nd,nd,nd->d", grad_out, x, x, slope)
            return grad_out * (s + np.einsum("d,nd,nd->nd", beta, x, slope))
        """,
        },
    ),
    style(
        "style_state_cells",
        "np.seterr, warnings filters, set_printoptions and a seed, each in a cell of its own",
        {},
        [
            ("start", 'np.seterr(divide="raise", invalid="raise")'),
            ("start", 'import warnings\nwarnings.simplefilter("error", DeprecationWarning)'),
            ("start", "np.set_printoptions(precision=12)"),
            ("start", "np.random.seed(5)"),
        ],
    ),
]

ASSIGNMENT = Assignment("05_gradcheck", "gradcheck", HONEST_WRONG)
ASSIGNMENT.entries = [
    *DELEGATION,
    *NUMERICAL,
    *STYLES,
    *common_attacks(
        HONEST_WRONG, which={"forge_results_before_cases", "sees_cases", "read_repo", "read_root", "fork_cpu"}
    ),
]
# Graded together: each answers its own cells (numerical_gradient, relative_error, Swish), or
# only appends cells that read what the sandbox hides.
bundle(ASSIGNMENT.entries, "bundle_delegate_a", "delegate_gradcheck_helpers", "delegate_swish_via_sigmoid_grad")
bundle(
    ASSIGNMENT.entries,
    "bundle_delegate_b",
    "delegate_gradcheck_private",
    "delegate_judge_exact_gradients",
    "numdiff_swish_centred_columns",
)
bundle(
    ASSIGNMENT.entries,
    "bundle_delegate_c",
    "delegate_gradcheck_compare",
    "delegate_check_elementwise",
    "numdiff_swish_complex_step",
)
bundle(ASSIGNMENT.entries, "bundle_machine", "forge_results_before_cases", "sees_cases", "read_repo", "read_root")

#: Entries that the grader of today loses to (strict xfails), by the part of issue 9 they wait for.
#: Classified against the working tree of 2026-12-01 ~17:00 UTC; an XPASS means: remove the entry here.
KNOWN_HOLES: dict[str, str] = {}
known_holes(ASSIGNMENT.entries, KNOWN_HOLES)
