"""Generate both READMEs' interface tables from `deployer/interface.py` (the one source of truth).

    python docs/gen_tables.py            # print the tables
    python docs/gen_tables.py --write    # rewrite them in README.md and README.ko.md
    python docs/gen_tables.py --check    # exit 1 when a README is out of date

Each table sits between `<!-- BEGIN GENERATED: NAME -->` and `<!-- END GENERATED: NAME -->`.
README.ko.md's tables take their descriptions from `docs/interface_ko.py`; an input or output
without one there stops the script with the line to add. `tests/unit/test_interface.py` and
`tests/unit/test_readmes.py` fail when a README does not hold the current text.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
for _path in (ROOT, DOCS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from interface_ko import INPUTS_KO, OUTPUTS_KO  # noqa: E402

from deployer.interface import INPUTS, OUTPUTS, InputSpec, OutputSpec  # noqa: E402

README = ROOT / "README.md"
README_KO = ROOT / "README.ko.md"


Tables = dict[str, Callable[[], str]]


class MissingKorean(Exception):
    """An input or output has no Korean description in docs/interface_ko.py."""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def missing_korean() -> list[str]:
    """One instruction per input/output without a Korean description (empty when complete)."""
    problems = []
    for kind, table, specs in (
        ("INPUTS_KO", INPUTS_KO, [(s.name, s.description) for s in INPUTS]),
        ("OUTPUTS_KO", OUTPUTS_KO, [(s.name, s.description) for s in OUTPUTS]),
    ):
        for name, english in specs:
            if name not in table:
                problems.append(
                    f'docs/interface_ko.py: add `"{name}": "<Korean description>",` to '
                    f"{kind} (English: {english}), then run `python docs/gen_tables.py --write`"
                )
        known = {name for name, _ in specs}
        problems += [
            f"docs/interface_ko.py: {kind} has `{name}`, which deployer/interface.py no longer "
            "defines: rename or remove it"
            for name in table
            if name not in known
        ]
    return problems


def _korean(table: Mapping[str, str], name: str) -> str:
    if name not in table:
        raise MissingKorean("\n".join(missing_korean()))
    return table[name]


@dataclass(frozen=True, slots=True)
class Words:
    """One README's language: its column headings and where its descriptions come from."""

    heads: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # inputs, outputs, local
    secret: str  # after a secret input's name
    prefer_aws: str  # after a secret input's local variable
    describe_input: Callable[[InputSpec], str]
    describe_output: Callable[[OutputSpec], str]


ENGLISH = Words(
    (
        ("Input", "Description"),
        ("Output", "Description"),
        ("Input", "Command line flag", "Environment / `.env` variable"),
    ),
    " (secret)",
    " (prefer the standard `AWS_*` variable)",
    lambda spec: spec.description,
    lambda spec: spec.description,
)
KOREAN = Words(
    (("입력", "설명"), ("출력", "설명"), ("입력", "명령줄 플래그", "환경 변수 / `.env` 변수")),
    " (비밀)",
    " (표준 `AWS_*` 변수를 권장)",
    lambda spec: _korean(INPUTS_KO, spec.name),
    lambda spec: _korean(OUTPUTS_KO, spec.name),
)


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = [head, tuple("---" for _ in head), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def tables(words: Words) -> Tables:
    """The generated tables of one README, by block name."""

    def inputs() -> str:
        return _table(
            words.heads[0],
            [
                (f"`{s.name}`" + words.secret * s.secret, _cell(words.describe_input(s)))
                for s in INPUTS
            ],
        )

    def outputs() -> str:
        return _table(
            words.heads[1], [(f"`{s.name}`", _cell(words.describe_output(s))) for s in OUTPUTS]
        )

    def local() -> str:
        return _table(
            words.heads[2],
            [
                (f"`{s.name}`", f"`{s.flag}`", f"`{s.env_var}`" + words.prefer_aws * s.secret)
                for s in INPUTS
            ],
        )

    return {"inputs": inputs, "outputs": outputs, "local": local}


TABLES = tables(ENGLISH)
TABLES_KO = tables(KOREAN)
READMES: dict[Path, Tables] = {README: TABLES, README_KO: TABLES_KO}


def block(name: str, tables: Tables = TABLES) -> str:
    """The full generated block, markers included."""
    return (
        f"<!-- BEGIN GENERATED: {name} (python docs/gen_tables.py --write) -->\n\n"
        f"{tables[name]()}\n\n"
        f"<!-- END GENERATED: {name} -->"
    )


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"<!-- BEGIN GENERATED: {name}\b[^>]*-->.*?<!-- END GENERATED: {name} -->", re.DOTALL
    )


def render(text: str, tables: Tables = TABLES, filename: str = "README.md") -> str:
    """`text` with every generated block replaced by its current content."""
    for name in tables:
        match = _pattern(name).search(text)
        if match is None:
            raise SystemExit(f"{filename} has no `<!-- BEGIN GENERATED: {name} -->` block")
        text = text[: match.start()] + block(name, tables) + text[match.end() :]
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="update the READMEs in place")
    parser.add_argument("--check", action="store_true", help="exit 1 if a README is stale")
    args = parser.parse_args(argv)
    problems = missing_korean()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    if not args.write and not args.check:
        print("\n\n".join(block(name, tables) for tables in READMES.values() for name in tables))
        return 0
    stale = 0
    for path, tables in READMES.items():
        current = path.read_text(encoding="utf-8")
        fresh = render(current, tables, path.name)
        if fresh == current:
            continue
        if args.check:
            print(f"{path.name} tables are stale: run `python docs/gen_tables.py --write`")
            stale = 1
        else:
            path.write_text(fresh, encoding="utf-8")
            print(f"{path.name} tables updated")
    return stale


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
