"""Write the hostile corpus to a folder, to grade by hand or try against stock nbgrader.

    python tests/hostile/make_corpus.py OUT [--full]

writes ``OUT/<name>/layers.ipynb`` (plus any files submitted beside it) for every entry of
:mod:`catalogue`, and ``perfect`` and ``honest_wrong`` for comparison. Then, for instance:

    python -m autograder grade --assignment 03_layers --submissions OUT --out graded

WARNING: under stock nbgrader these notebooks run with your rights: some fork, fill memory,
kill their parent, or write ``extra_credit`` into any gradebook they find.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

from autograder.sample_class.make_sample_class import ALL, exercises_only, make_notebook  # noqa: E402
from hostile.catalogue import CATALOGUE, HONEST_WRONG, build_notebook  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the hostile corpus of tests/hostile/catalogue.py.")
    parser.add_argument("out", type=Path, help="folder to write <name>/layers.ipynb into")
    parser.add_argument("--full", action="store_true", help="keep the lecture cells (default: exercises only)")
    args = parser.parse_args(argv)
    release = nbformat.read(str(ROOT / "notebooks" / "03_layers" / "layers.ipynb"), as_version=4)
    source = nbformat.read(str(ROOT / "solutions" / "03_layers" / "layers.ipynb"), as_version=4)
    if not args.full:
        release = exercises_only(release)
    for name, answers in [("perfect", ALL), ("honest_wrong", HONEST_WRONG)]:
        (args.out / name).mkdir(parents=True, exist_ok=True)
        nbformat.write(make_notebook(release, source, answers), str(args.out / name / "layers.ipynb"))
    for entry in CATALOGUE:
        folder = args.out / entry.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "layers.ipynb").write_text(build_notebook(entry, release, source))
        for rel, text in entry.files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
        print(f"{entry.name:<28} {entry.what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
