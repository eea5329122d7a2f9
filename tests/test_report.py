"""The class report (autograder/host/report.py and its template templates/report.html.j2).

Fast: a page rendered from a few hand-made rows. The Python side computes typed rows
(:func:`autograder.host.report.page`); the template escapes everything it shows, so a student id,
an exercise title or a flag holding markup stays text, and the page keeps its
Content-Security-Policy."""

from __future__ import annotations

import re

import pytest
from active_content import active_content

from autograder.host.mistakes import ExerciseMistakes, MistakeShare
from autograder.host.pipeline import Row
from autograder.host.report import CSP, Exercise, page, render

GROUPS = [
    Exercise("layers.Linear.backward", "Linear.backward", ["a1", "a2"]),
    Exercise("tanh", "Tanh.backward", ["b1"]),
]
POINTS = {"a1": 1.0, "a2": 2.0, "b1": 1.5}


def _rows() -> list[Row]:
    return [
        Row("XSS-R01<script>alert(1)</script>", 3, 4.5, {"a1": 1, "a2": 2}, ["called the library's answer: X"]),
        Row("cat", 4.5, 4.5, {"a1": 1, "a2": 2, "b1": 1.5}, []),
        Row(
            "dan",
            0,
            4.5,
            {},
            [
                "rejected <img src=x onerror=alert('XSS-R02')>.ipynb: a symbolic link, not a file (0 points for it)",
                "ignored files beside the notebook: <script>XSS-R03</script>.py",
                "sandbox unavailable",
            ],
        ),
    ]


def _students(html: str) -> dict[str, str]:
    """Each row of the Students table by the text of its first cell (as it stands in the page)."""
    table = html[html.index("<h2>Students</h2>") :]
    table = table[: table.index("</table>")]
    return {m.group(1): m.group(0) for m in re.finditer(r"<tr><td class='name'>(.*?)</td>.*?</tr>", table)}


def test_student_data_with_markup_is_escaped():
    mistakes = [ExerciseMistakes("Linear.backward", 3, 2, (MistakeShare("<script>XSS-R04</script>", 1, 2),), 1)]
    html = render("03_layers", GROUPS, POINTS, _rows(), [], mistakes)
    assert active_content(html, ["XSS-R01", "XSS-R02", "XSS-R03", "XSS-R04"]) == []
    assert "<script" not in html and "<img src=x" not in html
    rows = _students(html)
    assert "XSS-R01&lt;script&gt;alert(1)&lt;/script&gt;" in rows
    assert "rejected &lt;img src=x onerror=alert(&#x27;XSS-R02&#x27;)&gt;.ipynb" in rows["dan"]  # named, as text
    assert "&lt;script&gt;XSS-R04&lt;/script&gt;" in html
    assert f'content="{CSP}"' in html and "default-src 'none'" in html


def test_the_page_counts_each_kind_and_gives_it_a_column():
    html = render("03_layers", GROUPS, POINTS, _rows())
    top = html[html.index("<h2>Flags</h2>") : html.index("<h2>Exercises</h2>")]
    assert "<td class='name'>rejected files</td><td>1 of 3</td>" in top
    assert "<td class='name'>delegation</td><td>1 of 3</td>" in top
    assert "<td class='name'>grader notes</td><td>1 of 3</td>" in top
    assert "numerical differentiation" not in html  # nobody has it: no line, no column
    header = html[html.index("<h2>Students</h2>") :]
    header = header[: header.index("</tr>")]
    assert header.index(">delegation</th>") < header.index(">rejected files</th>") < header.index(">grader notes</th>")
    kinds = re.findall(r"<td class='kind'>(\d*)</td>", _students(html)["dan"])
    assert kinds == ["", "2", "1"]  # delegation, rejected files (two flags: a link, a file beside), grader notes
    assert "<td class='flags'></td>" in _students(html)["cat"]
    assert "<h2>Mistakes</h2>" not in html and "id='similar'" not in html  # None: sections left out


def test_the_typed_rows_hold_the_figures():
    p = page("03_layers", GROUPS, POINTS, _rows())
    assert [r.student for r in p.rows] == ["cat", "XSS-R01<script>alert(1)</script>", "dan"]  # best first
    assert p.mean == pytest.approx(2.5) and p.median == 3 and p.max_score == 4.5
    # Tanh: 1 of 3 full marks; Linear: 2 of 3. Hardest first.
    assert [(e.title, round(e.full_marks, 3), e.points) for e in p.exercises] == [
        ("Tanh.backward", 0.333, 1.5),
        ("Linear.backward", 0.667, 3.0),
    ]
    assert p.hardest == "Tanh.backward"
    assert [(c.points, c.css) for c in p.rows[1].exercises] == [(3, "full"), (0, "zero")]
    assert [c.kind.key for c in p.counts] == ["delegation", "rejected", "grader"]
    html = render("03_layers", GROUPS, POINTS, _rows())
    assert "<span>mean 2.5 / 4.5</span><span>median 3 / 4.5</span><span>hardest: Tanh.backward</span>" in html
    assert html.count("data:image/png;base64,") == 2
    assert "<td class='name'>Tanh.backward</td><td class='name'>tanh</td><td>1.5</td><td>33 %</td>" in html


def test_no_rows_no_figures():
    html = render("03_<b>", GROUPS, POINTS, [])
    assert html.startswith("<!DOCTYPE html>") and "<p>No graded submissions.</p>" in html
    assert "03_&lt;b&gt;: class report" in html and "<b>" not in html and "<img" not in html
