"""How much of each notebook is logic rather than story, figures and calls to the library (issue 23's count).

Each top-level statement of every code cell (the parameters cell excepted) is put in one class, and its
source lines (blank and comment-only lines left out) are counted:

- `import`: imports;
- `figure`: anything that draws or shows: a statement naming plt, sns, a figure or axes (`fig`, `ax`, `axes`,
  `g`, `grid`), or calling display, Markdown, print, `.plot`, `.style`, `.legend`, `.set_title`;
- `record`: `record.metric(...)`, `record.claim(...)`, `record.save()` and loops over claims;
- `drive`: one call into the library bound to names (`result = imp.imp_study(...)`), or a bare call to it;
- `logic`: everything else (a loop that computes, a comprehension filtering rows, a DataFrame built by hand).

    .venv/bin/python benchmarks/notebook_logic.py            # every notebook: lines per class
    .venv/bin/python benchmarks/notebook_logic.py --show logic 04_early_tickets
"""
from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
FIGURE_NAMES = {"plt", "sns", "fig", "ax", "axes", "g", "grid", "display", "Markdown", "print", "HTML"}
FIGURE_ATTRS = {"plot", "style", "legend", "set_title", "set_xlabel", "set_ylabel", "savefig", "imshow", "bar",
                "scatter", "axhline", "axvline", "text", "annotate", "tight_layout"}


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _attrs(node: ast.AST) -> set[str]:
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _library_names(tree: ast.Module) -> set[str]:
    """Names the notebook binds to ticketlib modules or objects."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ticketlib"):
            found |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("ticketlib")}
    return found


def _call_root(call: ast.Call) -> str | None:
    func = call.func
    while isinstance(func, ast.Attribute):
        func = func.value
    return func.id if isinstance(func, ast.Name) else None


def classify(statement: ast.stmt, library: set[str]) -> str:
    """One of import, figure, record, drive, logic."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return "import"
    names, attrs = _names(statement), _attrs(statement)
    if names & FIGURE_NAMES or attrs & FIGURE_ATTRS:
        return "figure"
    if "record" in names and not isinstance(statement, (ast.Assign, ast.AnnAssign)):
        return "record"
    value = statement.value if isinstance(statement, (ast.Assign, ast.AnnAssign, ast.Expr)) else None
    if isinstance(value, ast.Call) and _call_root(value) in library:
        return "drive"
    return "logic"


def _code_lines(source: str, statement: ast.stmt) -> int:
    lines = source.splitlines()[statement.lineno - 1:statement.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def count(notebook: Path) -> tuple[Counter, dict[str, list[str]]]:
    """(lines per class, the statements' source per class) of one notebook."""
    nb = nbformat.read(str(notebook), as_version=4)
    cells = ["\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in c.source.splitlines())
             for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    # IPython magics (%matplotlib) are blanked, keeping line numbers
    lines, shown = Counter(), {}
    library = set()
    for source in cells:
        library |= _library_names(ast.parse(source))
    for source in cells:
        for statement in ast.parse(source).body:
            kind = classify(statement, library)
            lines[kind] += _code_lines(source, statement)
            shown.setdefault(kind, []).append(ast.get_source_segment(source, statement) or "")
    return lines, shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="stems (default: every notebook)")
    parser.add_argument("--show", help="print the statements of this class")
    args = parser.parse_args()
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if p.stem in args.notebooks]
    kinds = ["logic", "drive", "record", "figure", "import"]
    total = Counter()
    print(f"{'notebook':<20}" + "".join(f"{k:>8}" for k in kinds))
    for path in paths:
        lines, shown = count(path)
        total += lines
        print(f"{path.stem:<20}" + "".join(f"{lines[k]:>8}" for k in kinds))
        if args.show:
            for text in shown.get(args.show, []):
                print("    " + text.replace("\n", "\n    "))
    print(f"{'all':<20}" + "".join(f"{total[k]:>8}" for k in kinds))


if __name__ == "__main__":
    main()
