"""The class report: one self-contained HTML page an instructor reads at a glance.

Per-exercise pass rates (a bar chart, hardest exercise first), the score histogram, the class
mean and median, how many students were flagged for each kind of flag (delegation, numerical
differentiation, edited test cells, ...: :data:`autograder.submission.FLAG_KINDS`), the table of
students with a column per kind, and the pairs of similar submissions for the instructor to
review (:mod:`autograder.similarity`; never a verdict). Charts are matplotlib PNGs inlined as
base64, so the page can be mailed or opened offline.

Student ids, flags and the cells of similar submissions are student data (a flag can name a
submitted file): every one is printable-escaped, cut short and HTML-escaped, and the page's
Content-Security-Policy lets no script, frame or remote resource load at all, so nothing in it
can run.
"""

from __future__ import annotations

import base64
import html
import io
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from .sanitize import printable

if TYPE_CHECKING:
    from .mistakes import ExerciseMistakes
    from .pipeline import Row
    from .similarity import SimilarPair
    from .submission import FlagKind

__all__ = ["Exercise", "exercises", "write_report"]


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
    from course.exercises import REGISTRY

    from .cells import graded_cells

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
    ax.yaxis.get_major_locator().set_params(integer=True)
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
    return _esc("; ".join(printable(f, MAX_FLAG) for f in flags))


def _flag_counts(rows: list[Row]) -> list[tuple[FlagKind, int]]:
    """Each kind of flag some student has, with how many students have it (in FLAG_KINDS order)."""
    from .submission import FLAG_KINDS, flag_kind

    students = {kind.key: 0 for kind in FLAG_KINDS}
    for r in rows:
        for key in {flag_kind(f).key for f in r.flags}:
            students[key] += 1
    return [(kind, students[kind.key]) for kind in FLAG_KINDS if students[kind.key]]


def _flag_summary(counts: list[tuple[FlagKind, int]], students: int) -> str:
    if not counts:
        return "<p class='summary'><span>no flags</span></p>"
    parts = ["<h2>Flags</h2><table><tr><th class='name'>kind</th><th>students</th><th class='name'>meaning</th></tr>"]
    for kind, n in counts:
        parts.append(
            f"<tr><td class='name'>{_esc(kind.label)}</td><td>{n} of {students}</td>"
            f"<td class='name'>{_esc(kind.meaning)}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def render(
    assignment: str,
    groups: list[Exercise],
    cell_points: dict[str, float],
    rows: list[Row],
    similar: list[SimilarPair] | None = None,
    mistakes: list[ExerciseMistakes] | None = None,
) -> str:
    """The report as one HTML string; ``cell_points`` maps each graded cell to its points;
    ``similar``, the pairs of similar submissions to list (None: the section is left out);
    ``mistakes``, the class's recognised mistakes (:mod:`autograder.mistakes`; None: left out)."""
    from .submission import flag_kind

    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        f"<title>{_esc(assignment)}: class report</title>",
        f"<style>{CSS}</style></head><body><h1>{_esc(assignment)}: class report</h1>",
    ]
    if not rows:
        parts.append("<p>No graded submissions.</p></body></html>")
        return "".join(parts)
    max_score = rows[0].max_score
    scores = [r.score for r in rows]
    maxima = {g.name: sum(cell_points.get(c, 0.0) for c in g.cells) for g in groups}
    full = {g.name: sum(g.points(r) >= maxima[g.name] - 1e-9 for r in rows) / len(rows) for g in groups}
    mean_share = {
        g.name: statistics.mean(g.points(r) / maxima[g.name] if maxima[g.name] else 0 for r in rows) for g in groups
    }
    ranked = sorted(groups, key=lambda g: (full[g.name], mean_share[g.name]))
    parts.append(
        "<p class='summary'>"
        f"<span>{len(rows)} students</span><span>mean {statistics.mean(scores):.1f} / {max_score:g}</span>"
        f"<span>median {statistics.median(scores):g} / {max_score:g}</span>"
        f"<span>hardest: {_esc(ranked[0].title)}</span></p>"
    )
    chart = _pass_rate_chart([(g.title, full[g.name]) for g in ranked])
    parts.append(f"<img alt='pass rate per exercise' src='{chart}'>")
    parts.append(f"<img alt='score histogram' src='{_histogram(scores, max_score)}'>")
    counts = _flag_counts(rows)
    parts.append(_flag_summary(counts, len(rows)))

    parts.append(
        "<h2>Exercises</h2><table><tr><th class='name'>exercise</th><th>catalogue name</th>"
        "<th>points</th><th>full marks</th><th>mean share of points</th></tr>"
    )
    for g in ranked:
        parts.append(
            f"<tr><td class='name'>{_esc(g.title)}</td><td class='name'>{_esc(g.name)}</td>"
            f"<td>{maxima[g.name]:g}</td><td>{100 * full[g.name]:.0f} %</td>"
            f"<td>{100 * mean_share[g.name]:.0f} %</td></tr>"
        )
    parts.append("</table>")

    parts.append("<h2>Students</h2><table><tr><th class='name'>student</th><th>score</th>")
    parts += [f"<th title='{_esc(g.name)}'>{_esc(g.title)}</th>" for g in groups]
    parts += [f"<th title='{_esc(kind.meaning)}'>{_esc(kind.label)}</th>" for kind, _ in counts]
    parts.append("<th class='name'>flags</th></tr>")
    for r in sorted(rows, key=lambda r: (-r.score, r.student)):
        parts.append(f"<tr><td class='name'>{_esc(r.student)}</td><td>{r.score:g} / {r.max_score:g}</td>")
        for g in groups:
            p = g.points(r)
            css = "full" if p >= maxima[g.name] - 1e-9 else "zero" if p == 0 else ""
            parts.append(f"<td class='{css}'>{p:g}</td>")
        kinds = [flag_kind(f).key for f in r.flags]
        parts += [f"<td class='kind'>{kinds.count(kind.key) or ''}</td>" for kind, _ in counts]
        parts.append(f"<td class='flags'>{_flags(r.flags)}</td></tr>")
    parts.append("</table>")
    if mistakes is not None:
        from .mistakes import render as render_mistakes

        parts.append(render_mistakes(mistakes, lambda x: _esc(printable(x, 100))))
    if similar is not None:
        from .similarity import render as render_similar

        parts.append(render_similar(similar, lambda x: _esc(printable(x, 100))))
    parts.append("</body></html>")
    return "".join(parts)


def write_report(
    path: Path,
    assignment: str,
    source_dir: Path,
    cell_points: dict[str, float],
    rows: list[Row],
    similar: list[SimilarPair] | None = None,
) -> Path:
    """Write the report for the graded cells ``cell_points`` (grade id -> points) of ``source_dir``,
    with the pairs of ``similar`` submissions (:func:`autograder.similarity.find_similar`)."""
    from .mistakes import class_mistakes, read_class
    from .pipeline import write_private

    mistakes = class_mistakes(read_class(path.parent / "course" / "autograded", assignment))
    write_private(path, render(assignment, exercises(source_dir, cell_points), cell_points, rows, similar, mistakes))
    return path
