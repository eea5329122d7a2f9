"""The class report: one self-contained HTML page an instructor reads at a glance.

Per-exercise pass rates (a bar chart, hardest exercise first), the score histogram, the class
mean and median, how many students were flagged for each kind of flag (delegation, numerical
differentiation, edited test cells, ...: :data:`autograder.host.submission.FLAG_KINDS`), the table of
students with a column per kind, and the pairs of similar submissions for the instructor to
review (:mod:`autograder.host.similarity`; never a verdict). Charts are matplotlib PNGs inlined as
base64, so the page can be mailed or opened offline. :func:`page` computes what the page shows
as typed rows; the Jinja2 template ``templates/report.html.j2`` lays it out.

Student ids, flags and the cells of similar submissions are student data (a flag can name a
submitted file): every one is printable-escaped, cut short and HTML-escaped (the template
escapes every value it shows), and the page's
Content-Security-Policy lets no script, frame or remote resource load at all, so nothing in it
can run.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup
from matplotlib.figure import Figure

from autograder.host.sanitize import printable

if TYPE_CHECKING:
    from autograder.host.mistakes import ExerciseMistakes
    from autograder.host.outputs import Row
    from autograder.host.similarity import SimilarPair
    from autograder.host.submission import FlagKind

__all__ = ["Exercise", "ExerciseRow", "KindCount", "Page", "StudentRow", "exercises", "page", "render", "write_report"]

#: The report's template (Jinja2, autoescaped), in :data:`TEMPLATES`.
TEMPLATE = "report.html.j2"
TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Exercise:
    """The graded cells that check one catalogue exercise (its visible and hidden checks)."""

    name: str
    title: str
    cells: list[str]

    def points(self, row: Row) -> float:
        return sum(row.cells.get(c, 0.0) for c in self.cells)


def exercises(source_dir: Path, cell_ids: Iterable[str]) -> list[Exercise]:
    """Group graded cells by the exercise their ``check()`` calls name, in notebook order."""
    from autograder.verdicts.cells import graded_cells
    from course.exercises import REGISTRY

    groups: dict[str, Exercise] = {}
    seen = set()
    for nb in sorted(source_dir.glob("*.ipynb")):
        try:
            cells = graded_cells(nb)
        except ValueError:
            cells = []
        for cell in cells:
            name = cell.calls[0].exercise
            title = REGISTRY[name].title if name in REGISTRY else name
            groups.setdefault(name, Exercise(name, title, [])).cells.append(cell.grade_id)
            seen.add(cell.grade_id)
    for cell_id in cell_ids:  # a graded cell the parser does not know stands on its own
        if cell_id not in seen:
            groups[cell_id] = Exercise(cell_id, cell_id, [cell_id])
    return list(groups.values())


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _pass_rate_chart(rates: list[tuple[str, float]]) -> str:
    """Horizontal bars, lowest pass rate on top."""
    fig = Figure(figsize=(7, 0.45 * len(rates) + 1.2), layout="constrained")
    ax = fig.subplots()
    labels = [t for t, _ in rates][::-1]
    values = [100 * r for _, r in rates][::-1]
    colours = ["#c0392b" if v < 50 else "#e67e22" if v < 80 else "#27ae60" for v in values]
    ax.barh(labels, values, color=colours)
    for y, v in enumerate(values):
        ax.text(min(v + 1, 92), y, f"{v:.0f} %", va="center", fontsize=9)
    ax.set_xlim(0, 100)
    ax.set_xlabel("students with full marks (%)")
    ax.set_title("Pass rate per exercise (hardest first)")
    return _png(fig)


def _histogram(scores: list[float], max_score: float) -> str:
    fig = Figure(figsize=(7, 3), layout="constrained")
    ax = fig.subplots()
    step = max(1, math.ceil(max_score / 20))  # about 20 bars, each centred on whole points
    edges = [step * (k - 0.5) for k in range(int(max_score // step) + 2)]
    ax.hist(scores, bins=edges, color="#2c7fb8", edgecolor="white")
    ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # the default, a MaxNLocator, takes it
    ax.axvline(statistics.mean(scores), color="k", linestyle="--", label=f"mean {statistics.mean(scores):.1f}")
    ax.axvline(statistics.median(scores), color="#e67e22", label=f"median {statistics.median(scores):g}")
    ax.set_xlabel(f"score (out of {max_score:g})")
    ax.set_ylabel("students")
    ax.set_title("Scores")
    ax.legend(fontsize="small")
    return _png(fig)


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.name, th.name, td.flags { text-align: left; }
td.full { background: #e8f6ec; } td.zero { background: #fbeaea; }
td.flags { color: #a04000; max-width: 30em; }
td.kind { color: #a04000; text-align: center; }
td.code { text-align: left; vertical-align: top; max-width: 40em; overflow-x: auto; }
td.code pre { margin: 0; font-size: 0.85em; white-space: pre; }
p.note { color: #555; max-width: 60em; }
details.pair { margin: 0.5em 0; } details.pair summary { cursor: pointer; }
.summary span { display: inline-block; margin-right: 2em; font-size: 1.2em; }
"""


#: The page needs inline styles and its own data: images, nothing else.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
#: A flag is cut to this many characters.
MAX_FLAG = 300


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _flags(flags: list[str]) -> str:
    """The flags of one student as the report shows them, cut short (escaped by the template)."""
    return "; ".join(printable(f, MAX_FLAG) for f in flags)


def _flag_counts(rows: list[Row]) -> list[tuple[FlagKind, int]]:
    """Each kind of flag some student has, with how many students have it (in FLAG_KINDS order)."""
    from autograder.host.submission import FLAG_KINDS, flag_kind

    students = {kind.key: 0 for kind in FLAG_KINDS}
    for r in rows:
        for key in {flag_kind(f).key for f in r.flags}:
            students[key] += 1
    return [(kind, students[kind.key]) for kind in FLAG_KINDS if students[kind.key]]


@dataclass(frozen=True)
class KindCount:
    """One kind of flag in the report's summary: how many students have it."""

    kind: FlagKind
    students: int


@dataclass(frozen=True)
class ExerciseRow:
    """One line of the Exercises table."""

    title: str
    name: str
    points: float
    full_marks: float
    mean_share: float


@dataclass(frozen=True)
class CellPoints:
    """One student's points for one exercise; ``css`` marks full marks and zero."""

    points: float
    css: str


@dataclass(frozen=True)
class StudentRow:
    """One line of the Students table: points per exercise, flags per kind, the flags."""

    student: str
    score: float
    max_score: float
    exercises: tuple[CellPoints, ...]
    kinds: tuple[int, ...]
    flags: str


@dataclass(frozen=True)
class Page:
    """Everything the report's template shows, computed (``rows`` empty: nothing was graded)."""

    assignment: str
    rows: tuple[StudentRow, ...] = ()
    mean: float = 0.0
    median: float = 0.0
    max_score: float = 0.0
    hardest: str = ""
    pass_rate_chart: str = ""
    histogram: str = ""
    counts: tuple[KindCount, ...] = ()
    exercises: tuple[ExerciseRow, ...] = ()
    #: The Students table's exercise columns (title, catalogue name), in notebook order.
    columns: tuple[tuple[str, str], ...] = ()
    #: Sections other modules render, escaping their student data with :func:`_student_text`.
    mistakes: Markup | None = None
    similar: Markup | None = None


def _student_text(x: object) -> str:
    return _esc(printable(str(x), 100))


def _finalize(value: object) -> object:
    """Every value the template shows is HTML-escaped as :func:`html.escape` does (quotes too);
    sections rendered already (:class:`markupsafe.Markup`) are left as they are."""
    if isinstance(value, Markup):
        return value
    return Markup(_esc("" if value is None else value))


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(csp=Markup(CSP), css=Markup(CSS))  # the page's own constants, as they are
    return env.get_template(TEMPLATE)


def page(
    assignment: str,
    groups: list[Exercise],
    cell_points: dict[str, float],
    rows: list[Row],
    similar: list[SimilarPair] | None = None,
    mistakes: list[ExerciseMistakes] | None = None,
) -> Page:
    """What the report shows (see :func:`render`), as typed rows."""
    from autograder.host.submission import flag_kind

    if not rows:
        return Page(assignment)
    scores = [r.score for r in rows]
    maxima = {g.name: sum(cell_points.get(c, 0.0) for c in g.cells) for g in groups}
    full = {g.name: sum(g.points(r) >= maxima[g.name] - 1e-9 for r in rows) / len(rows) for g in groups}
    mean_share = {
        g.name: statistics.mean(g.points(r) / maxima[g.name] if maxima[g.name] else 0 for r in rows) for g in groups
    }
    ranked = sorted(groups, key=lambda g: (full[g.name], mean_share[g.name]))
    counts = _flag_counts(rows)
    students = []
    for r in sorted(rows, key=lambda r: (-r.score, r.student)):
        cells = []
        for g in groups:
            p = g.points(r)
            cells.append(CellPoints(p, "full" if p >= maxima[g.name] - 1e-9 else "zero" if p == 0 else ""))
        kinds = [flag_kind(f).key for f in r.flags]
        students.append(
            StudentRow(
                r.student,
                r.score,
                r.max_score,
                tuple(cells),
                tuple(kinds.count(k.key) for k, _ in counts),
                _flags(r.flags),
            )
        )
    if mistakes is not None:
        from autograder.host.mistakes import render as render_mistakes

        mistakes_html = Markup(render_mistakes(mistakes, _student_text))
    if similar is not None:
        from autograder.host.similarity import render as render_similar

        similar_html = Markup(render_similar(similar, _student_text))
    return Page(
        assignment,
        rows=tuple(students),
        mean=statistics.mean(scores),
        median=statistics.median(scores),
        max_score=rows[0].max_score,
        hardest=ranked[0].title,
        pass_rate_chart=_pass_rate_chart([(g.title, full[g.name]) for g in ranked]),
        histogram=_histogram(scores, rows[0].max_score),
        counts=tuple(KindCount(kind, n) for kind, n in counts),
        exercises=tuple(ExerciseRow(g.title, g.name, maxima[g.name], full[g.name], mean_share[g.name]) for g in ranked),
        columns=tuple((g.title, g.name) for g in groups),
        mistakes=mistakes_html if mistakes is not None else None,
        similar=similar_html if similar is not None else None,
    )


def render(
    assignment: str,
    groups: list[Exercise],
    cell_points: dict[str, float],
    rows: list[Row],
    similar: list[SimilarPair] | None = None,
    mistakes: list[ExerciseMistakes] | None = None,
) -> str:
    """The report as one HTML string, from the template ``templates/report.html.j2``;
    ``cell_points`` maps each graded cell to its points; ``similar``, the pairs of similar
    submissions to list (None: the section is left out); ``mistakes``, the class's recognised
    mistakes (:mod:`autograder.host.mistakes`; None: left out)."""
    return _template().render(page=page(assignment, groups, cell_points, rows, similar, mistakes))


def write_report(
    path: Path,
    assignment: str,
    source_dir: Path,
    cell_points: dict[str, float],
    rows: list[Row],
    similar: list[SimilarPair] | None = None,
) -> Path:
    """Write the report for the graded cells ``cell_points`` (grade id -> points) of ``source_dir``,
    with the pairs of ``similar`` submissions (:func:`autograder.host.similarity.find_similar`)."""
    from autograder.host.mistakes import class_mistakes, read_class
    from autograder.host.private_files import write_private

    mistakes = class_mistakes(read_class(path.parent / "course" / "autograded", assignment))
    write_private(path, render(assignment, exercises(source_dir, cell_points), cell_points, rows, similar, mistakes))
    return path
