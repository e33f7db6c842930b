"""Regenerate the tables of benches/README.md from the saved results.

Run: python benches/tools/readme_tables.py [README]   (from anywhere: result paths in the markers
are relative to the repository's root)

Each table sits between a line `<!-- emlpress bench compare ARGS -->` and `<!-- /table -->`;
everything between is replaced by the tables that command prints (ARGS include --markdown).
The command in the marker is the one a reader runs by hand, from the repository's root, to
see the same figures. A block `<!-- machines: RESULT.json ... -->` ... `<!-- /table -->` gets
one line per result's machine. A block whose result file is missing is left as it is (and
named).
"""

import re
import shlex
import sys
from pathlib import Path

from emlpress import bench
from emlpress.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(<!-- ((?:emlpress bench compare|machines:) [^\n]*?) -->\n)(.*?)(<!-- /table -->)", re.S)


def _args(command: str):
    return None if command.startswith("machines:") else build_parser().parse_args(shlex.split(command)[1:])


def result_files(command: str) -> list:
    """The result files a marker's command reads, resolved against the repository's root."""
    args = _args(command)
    names = shlex.split(command)[1:] if args is None else args.results
    return [p if p.is_absolute() else ROOT / p for p in map(Path, names)]


def render(command: str) -> str:
    results = [bench.load(p) for p in result_files(command)]
    args = _args(command)
    if args is None:
        return "\n".join(f"- {line}" for line in bench.machines(results, bench.compare(results).labels).splitlines())
    c = bench.compare(results, only=args.only)
    if not c.rows:
        raise SystemExit(f"{command}: no benchmark to show")
    return bench.markdown(c, info=args.info)


def update(readme: Path) -> int:
    text = readme.read_text()
    n = 0

    def sub(m):
        nonlocal n
        missing = [str(p) for p in result_files(m.group(2)) if not p.is_file()]
        if missing:
            print(f"left as it is (no {', '.join(missing)}): <!-- {m.group(2)} -->", file=sys.stderr)
            return m.group(0)
        n += 1
        return m.group(1) + render(m.group(2)) + "\n" + m.group(4)

    readme.write_text(BLOCK.sub(sub, text))
    return n


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "README.md"
    print(f"{path}: {update(path)} tables regenerated")
