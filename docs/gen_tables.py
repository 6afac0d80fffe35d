"""Generate the README's interface tables from `deployer/interface.py` (the one source of truth).

    python docs/gen_tables.py            # print the tables
    python docs/gen_tables.py --write    # rewrite them in README.md between the markers
    python docs/gen_tables.py --check    # exit 1 when README.md is out of date

Each table sits between `<!-- BEGIN GENERATED: NAME -->` and `<!-- END GENERATED: NAME -->`;
`tests/unit/test_interface.py` fails when README.md does not hold the current text.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deployer.interface import INPUTS, OUTPUTS  # noqa: E402

README = ROOT / "README.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def inputs_table() -> str:
    rows = ["| Input | Description |", "| --- | --- |"]
    for spec in INPUTS:
        name = f"`{spec.name}`" + (" (secret)" if spec.secret else "")
        rows.append(f"| {name} | {_cell(spec.description)} |")
    return "\n".join(rows)


def outputs_table() -> str:
    rows = ["| Output | Description |", "| --- | --- |"]
    rows += [f"| `{spec.name}` | {_cell(spec.description)} |" for spec in OUTPUTS]
    return "\n".join(rows)


def local_table() -> str:
    rows = ["| Input | Command line flag | Environment / `.env` variable |", "| --- | --- | --- |"]
    for spec in INPUTS:
        var = f"`{spec.env_var}`"
        if spec.secret:
            var += " (prefer the standard `AWS_*` variable)"
        rows.append(f"| `{spec.name}` | `{spec.flag}` | {var} |")
    return "\n".join(rows)


TABLES = {"inputs": inputs_table, "outputs": outputs_table, "local": local_table}


def block(name: str) -> str:
    """The full generated block, markers included."""
    return (
        f"<!-- BEGIN GENERATED: {name} (python docs/gen_tables.py --write) -->\n\n"
        f"{TABLES[name]()}\n\n"
        f"<!-- END GENERATED: {name} -->"
    )


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"<!-- BEGIN GENERATED: {name}\b[^>]*-->.*?<!-- END GENERATED: {name} -->", re.DOTALL
    )


def render(text: str) -> str:
    """`text` with every generated block replaced by its current content."""
    for name in TABLES:
        match = _pattern(name).search(text)
        if match is None:
            raise SystemExit(f"README.md has no `<!-- BEGIN GENERATED: {name} -->` block")
        text = text[: match.start()] + block(name) + text[match.end() :]
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    args = parser.parse_args(argv)
    if not args.write and not args.check:
        print("\n\n".join(block(name) for name in TABLES))
        return 0
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md tables are stale: run `python docs/gen_tables.py --write`")
            return 1
        return 0
    if fresh != current:
        README.write_text(fresh, encoding="utf-8")
        print("README.md tables updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
