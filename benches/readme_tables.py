"""Regenerate the tables of benches/README.md from the saved results.

Run: python benches/readme_tables.py [README]   (from the repository's root)

Each table sits between a line `<!-- emlpress bench compare ARGS -->` and `<!-- /table -->`;
everything between is replaced by the tables that command prints (ARGS include --markdown).
The command in the marker is the one a reader runs by hand to see the same figures. A block
`<!-- machines: RESULT.json ... -->` ... `<!-- /table -->` gets one line per result's machine.
"""

import re
import shlex
import sys
from pathlib import Path

from emlpress import bench
from emlpress.cli import build_parser

BLOCK = re.compile(r"(<!-- ((?:emlpress bench compare|machines:) [^\n]*?) -->\n)(.*?)(<!-- /table -->)", re.S)


def render(command: str) -> str:
    if command.startswith("machines:"):
        results = [bench.load(p) for p in shlex.split(command)[1:]]
        return "\n".join(f"- {line}" for line in bench.machines(results, bench.compare(results).labels).splitlines())
    args = build_parser().parse_args(shlex.split(command)[1:])
    results = [bench.load(p) for p in args.results]
    c = bench.compare(results, only=args.only)
    if not c.rows:
        raise SystemExit(f"{command}: no benchmark to show")
    return bench.markdown(c, info=args.info)


def update(readme: Path) -> int:
    text = readme.read_text()
    n = 0

    def sub(m):
        nonlocal n
        n += 1
        return m.group(1) + render(m.group(2)) + "\n" + m.group(4)

    readme.write_text(BLOCK.sub(sub, text))
    return n


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "README.md"
    print(f"{path}: {update(path)} tables regenerated")
