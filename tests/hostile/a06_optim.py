"""Hostile corpus of ``06_optim``: the optimisers' step() and the learning-rate schedules."""

from __future__ import annotations

from .catalogue import Hostile
from .corpus import Assignment, bundle, common_attacks, known_holes, on_wrong, style

HONEST_WRONG = {
    "SGD_step": "for p in self.params:\n    p.data += self.lr * p.grad",  # uphill
    # the friction applied after the gradient is added (every step, the first included)
    "Momentum_step": """
        for p, v in zip(self.params, self.velocity):
            if self.formulation == "gradient":
                v += p.grad
                v *= self.rho
                p.data -= self.lr * v
            else:
                v -= self.lr * p.grad
                v *= self.rho
                p.data += v
    """,
    "RMSProp_step": """
        for p, s in zip(self.params, self.square_avg):
            s *= self.decay
            s += (1.0 - self.decay) * np.abs(p.grad)
            p.data -= self.lr * p.grad / (np.sqrt(s) + self.eps)
    """,  # |g| instead of g²
    "Adam_step": """
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v):
            m *= self.beta1
            m += (1.0 - self.beta1) * p.grad
            v *= self.beta2
            v += (1.0 - self.beta2) * p.grad**2
            p.data -= self.lr * m / (np.sqrt(v) + self.eps)
    """,  # no bias correction
    "step_decay": "return lr0 * gamma ** (t // step_size + 1)",  # one decay too many
    "cosine_decay": "t = min(t, T)\nreturn lr_min + (lr0 - lr_min) * math.cos(math.pi * t / (2 * T)) ** 2 * 0.9",
}

DELEGATION = [
    Hostile(
        "delegate_momentum_as_sgd",
        "SGD.step as Momentum with rho = 0",
        on_wrong(
            HONEST_WRONG,
            SGD_step="""
        if not hasattr(self, "_other"):
            self._other = course.optim.Momentum(self.params, lr=self.lr, rho=0.0)
        self._other.lr = self.lr
        self._other.step()
    """,
        ),
    ),
    Hostile(
        "delegate_adam_as_rmsprop",
        "RMSProp.step as Adam with beta1 = 0 (bias correction undone)",
        on_wrong(
            HONEST_WRONG,
            RMSProp_step="""
                if not hasattr(self, "_other"):
                    self._other = course.optim.Adam(self.params, lr=self.lr, beta1=0.0, beta2=self.decay, eps=self.eps)
                self._other.step()
            """,
        ),
    ),
    Hostile(
        "delegate_super_and_saved",
        "step() by super() and by code copied from the reference",
        on_wrong(
            HONEST_WRONG,
            SGD_step="super().step()",
            Adam_step="_SAVED['Adam'](self)",
            Momentum_step="_SAVED['Momentum'](self)",
        ),
        [
            (
                "start",
                """
        import types
        _SAVED = {n: types.FunctionType(getattr(course.optim, n).step.__code__, vars(course.optim))
                  for n in ("Adam", "Momentum")}
    """,
            )
        ],
    ),
    Hostile(
        "delegate_schedules_classes",
        "the schedules from StepDecay.lr_at and CosineDecay.lr_at",
        on_wrong(
            HONEST_WRONG,
            step_decay="""
            opt = course.optim.SGD([course.layers.Parameter(np.zeros(1))], lr=lr0)
            return course.optim.StepDecay(opt, step_size, gamma).lr_at(t)
        """,
            cosine_decay="""
            opt = course.optim.SGD([course.layers.Parameter(np.zeros(1))], lr=lr0)
            return course.optim.CosineDecay(opt, T, lr_min).lr_at(t)
        """,
        ),
    ),
    Hostile(
        "delegate_reload_optim",
        "course.optim reloaded and its source exec'd",
        on_wrong(
            HONEST_WRONG,
            RMSProp_step="importlib.reload(course.optim).RMSProp.step(self)",
            step_decay="return _EXECD['step_decay'](lr0, t, step_size, gamma)",
            cosine_decay="return _EXECD['cosine_decay'](lr0, t, T, lr_min)",
        ),
        [
            (
                "start",
                """
        import importlib, pathlib
        _EXECD = {"__name__": "optim_copy"}
        exec(pathlib.Path(course.optim.__file__).read_text(), _EXECD)
    """,
            )
        ],
    ),
]

STYLES = [
    style(
        "style_vectorised_inplace",
        "np.subtract(out=), enumerate over states, list comprehension updates",
        {
            "SGD_step": "for p in self.params:\n    np.subtract(p.data, self.lr * p.grad, out=p.data)",
            "Adam_step": """
            self.t += 1
            c1, c2 = 1.0 - self.beta1**self.t, 1.0 - self.beta2**self.t
            for i, p in enumerate(self.params):
                self.m[i][...] = self.beta1 * self.m[i] + (1.0 - self.beta1) * p.grad
                self.v[i][...] = self.beta2 * self.v[i] + (1.0 - self.beta2) * np.square(p.grad)
                p.data[...] = p.data - self.lr * (self.m[i] / c1) / (np.sqrt(self.v[i] / c2) + self.eps)
        """,
            "step_decay": "return float(lr0 * np.power(gamma, np.floor_divide(t, step_size)))",
            "cosine_decay": "return lr_min + (lr0 - lr_min) * (0.5 + 0.5 * np.cos(np.pi * min(t, T) / T))",
        },
    ),
    style(
        "style_state_cells",
        "np.seterr, warnings filters, set_printoptions and a seed, each in a cell of its own",
        {},
        [
            ("start", 'np.seterr(all="ignore")'),
            ("start", 'import warnings\nwarnings.filterwarnings("ignore")'),
            ("start", "np.set_printoptions(linewidth=200)"),
            ("start", "np.random.seed(11)"),
        ],
    ),
]

ASSIGNMENT = Assignment("06_optim", "optim", HONEST_WRONG)
ASSIGNMENT.entries = [
    *DELEGATION,
    *STYLES,
    *common_attacks(
        HONEST_WRONG, which={"forge_results_thread", "sees_job", "active_content", "read_environ", "memory_children"}
    ),
]
# Graded together: each answers its own cells (SGD, RMSProp, the schedules).
bundle(
    ASSIGNMENT.entries,
    "bundle_delegate_a",
    "delegate_momentum_as_sgd",
    "delegate_adam_as_rmsprop",
    "delegate_schedules_classes",
)
bundle(ASSIGNMENT.entries, "bundle_styles", "style_vectorised_inplace", "style_state_cells")
bundle(ASSIGNMENT.entries, "bundle_machine", "sees_job", "read_environ")

#: Entries that the grader of today loses to (strict xfails), by the part of issue 9 they wait for.
#: Classified against the working tree of 2026-12-01 ~17:00 UTC; an XPASS means: remove the entry here.
KNOWN_HOLES: dict[str, str] = {}
known_holes(ASSIGNMENT.entries, KNOWN_HOLES)
