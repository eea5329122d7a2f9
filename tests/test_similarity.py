"""Similar submissions listed for review (``autograder/host/similarity.py``).

A renamed and reformatted copy is listed; two honest solutions written independently (each
checked correct here against centred differences) are not; the release's scaffold alone never
makes a pair; the obvious one-liners a whole class writes do not either; a few hundred students
stay cheap; the section of the report escapes what students wrote.
"""

from __future__ import annotations

import random
import resource
import textwrap

import nbformat
import numpy as np
import pytest

import course
from autograder.host import similarity
from autograder.host.pipeline import ROOT, Row
from autograder.host.report import Exercise, render
from autograder.host.similarity import answer_cells, find_similar, normalise
from autograder.sample_class import make_sample_class as sample

RELEASE = nbformat.read(str(ROOT / "notebooks" / "03_layers" / "layers.ipynb"), as_version=4)
SOURCE = nbformat.read(str(ROOT / "solutions" / "03_layers" / "layers.ipynb"), as_version=4)
STUBS = answer_cells(RELEASE)


def cell(name: str) -> str:
    return f"layers_{name}_backward"


#: One honest student: the instructor's solutions.
INSTRUCTOR = {cell(name): "solution" for name in sample.EXERCISES}

#: Another honest student, written independently: other formulas, other structure.
INDEPENDENT = {
    cell("Linear"): """
        n_examples = grad_out.shape[0]
        for i in range(n_examples):
            self.W.grad += np.outer(self.x[i], grad_out[i])
        self.b.grad += np.einsum("nm->m", grad_out)
        return np.einsum("nm,dm->nd", grad_out, self.W.data)
    """,
    cell("Sigmoid"): "s = self.y\nlocal_slope = s - s * s\nreturn np.multiply(grad_out, local_slope)",
    cell("Tanh"): "return grad_out - grad_out * np.square(self.y)",
    cell("ReLU"): "return np.where(self.x > 0, grad_out, 0.0)",
    cell("LinearSigmoid"): """
        delta = np.multiply(grad_out, self.y - np.square(self.y))
        self.W.grad += np.einsum("nd,nm->dm", self.x, delta)
        if self.b is not None:
            np.add(self.b.grad, delta.sum(0), out=self.b.grad)
        return np.einsum("nm,dm->nd", delta, self.W.data)
    """,
    cell("Sequential"): """
        g = grad_out
        k = len(self.layers)
        while k > 0:
            k -= 1
            g = self.layers[k].backward(g)
        return g
    """,
}

#: INDEPENDENT copied: every variable renamed, comments and docstrings added, reformatted.
COPIED = {
    cell("Linear"): """
        # loop over the batch
        count = (grad_out.shape[0])
        for row in range(count):
            self.W.grad += np.outer( self.x[row], grad_out[row] )   # outer product

        self.b.grad += np.einsum('nm->m', grad_out)
        return np.einsum('nm,dm->nd',
                         grad_out,
                         self.W.data)
    """,
    cell(
        "Sigmoid"
    ): '"""sigmoid derivative"""\nsig = self.y  # saved\nd = sig - sig*sig\nreturn np.multiply(grad_out,d)',
    cell("Tanh"): "return grad_out - grad_out*np.square(self.y)  # 1 - tanh^2",
    cell("ReLU"): "return np.where(self.x>0, grad_out, 0.0)",
    cell("LinearSigmoid"): """
        # chain rule through the sigmoid first
        dz = np.multiply(grad_out, self.y - np.square(self.y))
        self.W.grad += np.einsum("nd,nm->dm", self.x, dz)
        if self.b is not None:
            np.add(self.b.grad, dz.sum(0), out = self.b.grad)
        return np.einsum("nm,dm->nd", dz, self.W.data)
    """,
    cell("Sequential"): """
        current = grad_out
        j = len(self.layers)

        while j > 0:
            j -= 1
            current = self.layers[j].backward(current)
        return current
    """,
}


def answers_of(answers: dict) -> dict[str, str]:
    """The answer cells (``layers/<grade id>`` -> source) of a notebook filled with ``answers``."""
    nb = sample.make_notebook(
        RELEASE, SOURCE, {k: textwrap.dedent(v) if v != "solution" else v for k, v in answers.items()}
    )
    return {f"layers/{g}": s for g, s in answer_cells(nb).items()}


STUB_CELLS = {f"layers/{g}": s for g, s in STUBS.items()}


def _layer(name: str, source: str):
    namespace = {"course": course, "np": np}
    exec(compile(source, f"<{name}>", "exec"), namespace)  # noqa: S102 - our own test answers
    cls = namespace[name]
    if name == "Linear":
        return cls(4, 3, rng=0)
    if name == "LinearSigmoid":
        return cls(4, 3, bias=True, rng=1)
    if name == "Sequential":
        return cls(course.Linear(4, 5, rng=2), course.Tanh(), course.Linear(5, 3, rng=3))
    return cls()


@pytest.mark.parametrize("answers", [INSTRUCTOR, INDEPENDENT, COPIED], ids=["instructor", "independent", "copied"])
def test_the_honest_answers_here_are_correct(answers):
    """Check that the answers the other tests compare are right (centred differences)."""
    cells = answers_of(answers)
    x = np.random.default_rng(0).normal(size=(6, 4))
    for name in sample.EXERCISES:
        report = course.check_layer(_layer(name, cells[f"layers/{cell(name)}"]), x)
        assert report.passed, (name, report.problems)


def test_renaming_reformatting_and_comments_change_nothing():
    """Check that a renamed, re-commented, reformatted copy normalises to the same tokens."""
    given = {t for t in normalise(STUBS[cell("Linear")]) if t.isidentifier()} | {"self", "grad_out"}
    original = answers_of(INDEPENDENT)[f"layers/{cell('Linear')}"]
    copy = answers_of(COPIED)[f"layers/{cell('Linear')}"]
    assert original != copy
    assert normalise(original, given) == normalise(copy, given)
    assert "count" not in normalise(copy, given) and "self" in normalise(copy, given)
    sigmoid = f"layers/{cell('Sigmoid')}"
    assert '"""sigmoid derivative"""' in answers_of(COPIED)[sigmoid]
    assert normalise(answers_of(COPIED)[sigmoid], given) == normalise(answers_of(INDEPENDENT)[sigmoid], given)


def test_a_renamed_reformatted_copy_is_listed_and_independent_solutions_are_not():
    """Check that the copy pairs with its original, and two independent solutions do not pair."""
    answers = {"ann": answers_of(INSTRUCTOR), "ben": answers_of(INDEPENDENT), "cat": answers_of(COPIED)}
    pairs = find_similar(answers, STUB_CELLS)
    assert [(p.first, p.second) for p in pairs] == [("ben", "cat")]
    pair = pairs[0]
    assert pair.similarity > 0.9
    assert {m.cell for m in pair.cells} == set(STUB_CELLS)  # every cell was copied
    linear = next(m for m in pair.cells if m.cell.endswith("Linear_backward"))
    assert "n_examples" in linear.first and "count" in linear.second  # the cells as written


def test_independent_solutions_share_little():
    """Check that the honest pair is far below the threshold, not just under it."""
    answers = {"ann": answers_of(INSTRUCTOR), "ben": answers_of(INDEPENDENT)}
    assert find_similar(answers, STUB_CELLS, threshold=0.3, min_shared=1) == []


def test_the_scaffold_alone_makes_no_pair():
    """Check that students who left the stubs (or only re-commented them) are not alike at all."""
    blank = answers_of({})
    recommented = {c: "# I did not get this one\n" + s.replace('"""', '"""Not done. ', 1) for c, s in blank.items()}
    answers = {"dan": blank, "eve": dict(blank), "fay": recommented}
    assert find_similar(answers, STUB_CELLS, threshold=0.0, min_shared=1) == []


def test_the_stub_is_subtracted_from_a_copied_answer():
    """Check that two students with the same short answer pair on the answer, not on the stub: with
    the stub left in, the blank students above would pair too."""
    answers = {
        "gus": answers_of({cell("Tanh"): "return grad_out - grad_out * np.square(self.y)"}),
        "hal": answers_of({cell("Tanh"): "return grad_out - grad_out * np.square(self.y)"}),
    }
    pairs = find_similar(answers, STUB_CELLS, min_shared=1)
    assert [(p.first, p.second) for p in pairs] == [("gus", "hal")]
    assert [m.cell for m in pairs[0].cells] == [f"layers/{cell('Tanh')}"]


def test_what_the_whole_class_writes_makes_no_pair():
    """Check that in a class, the one obvious way of writing an answer is no sign of copying,
    while two students sharing an unusual one are still listed."""
    answers = {f"s{k:02d}": answers_of(INSTRUCTOR) for k in range(10)}
    answers["s98"] = answers_of(INDEPENDENT)
    answers["s99"] = answers_of(COPIED)
    pairs = find_similar(answers, STUB_CELLS)
    assert [(p.first, p.second) for p in pairs] == [("s98", "s99")]


def _random_answer(rng: random.Random) -> str:
    """A made-up answer of its own: a few lines of arithmetic on random names and constants."""
    names = [f"t{rng.randrange(10**6)}" for _ in range(4)]
    lines = []
    for k, name in enumerate(names):
        ops = [rng.choice(["+", "-", "*", "/", "@"]) for _ in range(3)]
        terms = [rng.choice(["self.y", "self.x", "grad_out", *names[:k]]) if k else "grad_out" for _ in range(2)]
        lines.append(
            f"{name} = np.{rng.choice(['exp', 'tanh', 'sqrt', 'abs'])}({terms[0]} {ops[0]} "
            f"{rng.uniform(0, 9):.3f}) {ops[1]} {terms[1]} {ops[2]} {rng.randrange(100)}"
        )
    lines.append(f"return {names[-1]}")
    return "\n".join(lines)


def test_a_class_of_three_hundred_stays_cheap():
    """Check that 300 students with 6 answer cells each are compared within a small CPU budget,
    and that the one copied pair among them is found."""
    rng = random.Random(7)
    answers = {
        f"student{k:03d}": {c: sample.fill(stub, [_random_answer(rng)]) for c, stub in STUB_CELLS.items()}
        for k in range(300)
    }
    answers["student300"] = dict(answers["student123"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    pairs = find_similar(answers, STUB_CELLS)
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - before
    assert [(p.first, p.second) for p in pairs] == [("student123", "student300")]
    assert cpu < 30, f"{cpu:.1f} s of CPU for 300 students"


def test_the_report_lists_the_pairs_side_by_side_escaped():
    """Check that the report's section shows both cells, escapes them, and keeps the CSP."""
    hostile = answers_of(COPIED)
    key = f"layers/{cell('Tanh')}"
    hostile[key] = hostile[key] + "\n# </pre><script>alert(1)</script><img src=x onerror=alert(2)>\x1b[31m"
    original = answers_of(INDEPENDENT)
    original[key] = hostile[key]
    pairs = find_similar({"ben<i>": original, "cat": hostile}, STUB_CELLS)
    assert len(pairs) == 1
    rows = [Row("ben<i>", 1, 2, {"c": 1}, []), Row("cat", 2, 2, {"c": 2}, [])]
    page = render("03_layers", [Exercise("c", "C", ["c"])], {"c": 2}, rows, pairs)
    section = page[page.index("id='similar'") :]
    assert "<script" not in page and "onerror=alert" not in section.replace("onerror=alert(2)&gt;", "")
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "\x1b" not in page and "\\x1b[31m" in section
    assert "ben&lt;i&gt; and cat" in section and "n_examples" in section and "count" in section
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "no verdict" in section
    assert render("03_layers", [Exercise("c", "C", ["c"])], {"c": 2}, rows, []).count("No pair of submissions") == 1


def test_unparsable_cells_are_still_compared():
    """Check that a cell with a syntax error is compared by its words (a copy is still listed)."""
    broken = answers_of(INDEPENDENT)
    for key in broken:
        broken[key] = broken[key] + "\n    return (("
    answers = {"ivy": broken, "jon": {k: v.replace("    ", "  ") for k, v in broken.items()}}
    assert similarity.normalise(broken[f"layers/{cell('Linear')}"])  # words, not nothing
    assert [(p.first, p.second) for p in find_similar(answers, STUB_CELLS)] == [("ivy", "jon")]


def test_the_pipeline_reads_the_notebooks_as_graded_and_never_a_link(tmp_path):
    """Check that the run's list comes from ``course/submitted`` (the staged copies) against the
    release in ``course/release``, and that a link there is not followed."""
    from autograder.host import pipeline

    course_dir = tmp_path / "out" / "course"
    (course_dir / "release" / "03_layers").mkdir(parents=True)
    nbformat.write(RELEASE, str(course_dir / "release" / "03_layers" / "layers.ipynb"))
    for student, answers in [("ben", INDEPENDENT), ("cat", COPIED), ("ann", INSTRUCTOR)]:
        nb = sample.make_notebook(
            RELEASE, SOURCE, {k: textwrap.dedent(v) if v != "solution" else v for k, v in answers.items()}
        )
        staged = course_dir / "submitted" / student / "03_layers"
        staged.mkdir(parents=True)
        nbformat.write(nb, str(staged / "layers.ipynb"))
    linked = course_dir / "submitted" / "dot" / "03_layers"
    linked.mkdir(parents=True)
    (linked / "layers.ipynb").symlink_to(course_dir / "submitted" / "cat" / "03_layers" / "layers.ipynb")
    settings = pipeline.Settings("03_layers", tmp_path / "subs", tmp_path / "out", progress=None)
    rows = [Row(s, 0, 18, {}, []) for s in ("ann", "ben", "cat", "dot")]
    assert [(p.first, p.second) for p in pipeline._similar(settings, rows)] == [("ben", "cat")]
