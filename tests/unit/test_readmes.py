"""README.md and README.ko.md stay in step: inputs, outputs, troubleshooting, examples.

The inputs/outputs tables of both READMEs are generated (`docs/gen_tables.py`), the Korean
descriptions from `docs/interface_ko.py`. Each failure message says what to add where.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from deployer.interface import INPUTS, OUTPUTS
from deployer.settings import RECORD_BASENAME

ROOT = Path(__file__).resolve().parents[2]
EN, KO = "README.md", "README.ko.md"
TROUBLESHOOTING = {EN: "## Troubleshooting", KO: "## 문제 해결"}


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def troubleshooting_titles(text: str, heading: str) -> list[str]:
    """Each troubleshooting row's title: the bold and `code` spans of its first cell.

    The English message titles (**Too many deletions**) and codes (`AccessDenied`) are
    what the program prints in both languages, so they name a row in either README (in
    sorted order: word order differs by language). A row with neither (a symptom in
    words) is matched by its position.
    """
    start = text.index(heading + "\n")
    lines = text[start:].splitlines()[1:]
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        cell = line.split("|")[1]
        spans = [bold or code for bold, code in re.findall(r"\*\*(.+?)\*\*|`([^`]+)`", cell)]
        named = " ".join(f"`{s}`" for s in sorted(spans))  # word order differs by language
        rows.append(named or "(a row without a bold or `code` title)")
    return rows


def test_troubleshooting_titles_parse() -> None:
    """The parser finds bold titles and codes in the first cell, in order, and stops at the end."""
    text = (
        "## T\n\nintro\n\n| a | b |\n| --- | --- |\n"
        "| **Access denied** on `PutObject` / `DeleteObjects` | x |\n"
        "| The site is old | y |\n\nafter\n| **Not a row** | z |\n"
    )
    assert troubleshooting_titles(text, "## T") == [
        "`Access denied` `DeleteObjects` `PutObject`",
        "(a row without a bold or `code` title)",
    ]


def test_troubleshooting_rows_in_step() -> None:
    """Both READMEs have the same troubleshooting rows (by title), in the same order."""
    english = troubleshooting_titles(_text(EN), TROUBLESHOOTING[EN])
    korean = troubleshooting_titles(_text(KO), TROUBLESHOOTING[KO])
    problems = []
    matcher = difflib.SequenceMatcher(a=english, b=korean, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op in ("delete", "replace"):
            problems += [
                f"{KO} `{TROUBLESHOOTING[KO]}` lacks the row {english[i]} ({EN} row {i + 1}): "
                "add it in the same place (keep the English title in bold / `code`)"
                for i in range(a1, a2)
            ]
        if op in ("insert", "replace"):
            problems += [
                f"{EN} `{TROUBLESHOOTING[EN]}` lacks the row {korean[i]} ({KO} row {i + 1}): "
                "add it in the same place"
                for i in range(b1, b2)
            ]
    assert not problems, "\n".join(problems)
    assert len(english) >= 20


def test_every_input_and_output_has_a_korean_description(gen_tables: ModuleType) -> None:
    """docs/interface_ko.py describes exactly the interface's inputs and outputs."""
    problems = gen_tables.missing_korean()
    assert not problems, "\n".join(problems)


def test_korean_descriptions_state_the_current_default(gen_tables: ModuleType) -> None:
    """Each Korean input description says its default like the English one does."""
    ko = gen_tables.INPUTS_KO
    for spec in INPUTS:
        text = ko[spec.name]
        assert "기본값:" in text or text.endswith("필수."), (
            f"docs/interface_ko.py: end the `{spec.name}` description with `기본값: ...` or `필수.`"
        )
        if spec.default:
            assert f"`{spec.default}`" in text, (
                f"docs/interface_ko.py: the `{spec.name}` description must state its default "
                f"`{spec.default}` (English: {spec.description})"
            )


@pytest.mark.parametrize("name", [EN, KO])
def test_every_input_and_output_is_in_each_readme(name: str) -> None:
    """Every input and output name appears as `code` in both READMEs."""
    text = _text(name)
    names = [s.name for s in INPUTS] + [s.name for s in OUTPUTS]
    missing = [n for n in names if f"`{n}`" not in text]
    assert not missing, f"{name} does not name {missing}: run `python docs/gen_tables.py --write`"


def _action_steps(text: str) -> list[dict[str, Any]]:
    """The `with:` of every workflow step in the README's YAML blocks that uses the action."""
    steps = []
    for block in re.findall(r"```ya?ml\n(.*?)```", text, re.DOTALL):
        document = yaml.safe_load(block)
        items = document if isinstance(document, list) else document.get("jobs", {})
        if isinstance(items, dict):
            items = [s for job in items.values() for s in job.get("steps", [])]
        steps += [s["with"] for s in items if "s3-cloudfront-deploy" in str(s.get("uses", ""))]
    return steps


def test_workflow_examples_in_step() -> None:
    """Both READMEs show the same workflow examples (the action's `with:`), in the same order."""
    english, korean = _action_steps(_text(EN)), _action_steps(_text(KO))
    assert len(english) >= 10
    diff = "\n".join(
        difflib.unified_diff(
            [repr(s) for s in english], [repr(s) for s in korean], EN, KO, lineterm=""
        )
    )
    assert english == korean, f"add the same example to both READMEs:\n{diff}"


@pytest.mark.parametrize("name", [EN, KO])
def test_every_workflow_example_sets_aws_region(name: str) -> None:
    """Without `aws-region` a bucket outside us-east-1 fails: every example states it."""
    steps = _action_steps(_text(name))
    for path in sorted((ROOT / "docs" / "examples").glob("*.yml")):
        steps += _action_steps("```yaml\n" + path.read_text(encoding="utf-8") + "```")
    for step in steps:
        assert "aws-region" in step, f"{name}: an example without `aws-region`: {step}"


def test_policy_examples_in_step() -> None:
    """The JSON policies (bucket, IAM, trust) are the same in both READMEs."""
    english, korean = (re.findall(r"```json\n(.*?)```", _text(n), re.DOTALL) for n in (EN, KO))
    assert len(english) >= 3
    assert english == korean, "the JSON policy examples differ between README.md and README.ko.md"


# Words GitHub Docs in Korean says otherwise: job 작업, step 단계, repository 리포지토리,
# secret 비밀, pull request 끌어오기 요청, runner 실행기, branch 분기.
NOT_GITHUB_DOCS_KOREAN = ("잡", "스텝", "저장소", "풀 리퀘스트", "러너", "브랜치", "시크릿")
# A particle written apart from the code or English word it belongs to (`bucket` 을).
DETACHED_PARTICLE = re.compile(
    r"[`A-Za-z)] (을|를|은|는|와|과|으로|로|의|에|에서|입니다)(?=[\s,.)])"
)


def test_korean_readme_terms_and_particles() -> None:
    """README.ko.md uses GitHub Docs' Korean terms, attaches particles to code and English
    words, and says "CloudFront 배포" where it means the distribution."""
    text = _text(KO) + "\n" + (ROOT / "docs" / "interface_ko.py").read_text(encoding="utf-8")
    for word in NOT_GITHUB_DOCS_KOREAN:
        assert word not in text, f"README.ko.md / docs/interface_ko.py: `{word}` (see the terms)"
    detached = [m.group(0) for m in DETACHED_PARTICLE.finditer(text)]
    assert not detached, f"attach these particles to the word before them: {detached}"
    # The distribution's ID is always "CloudFront 배포 ID" (배포 alone is a deploy).
    assert not re.search(r"(?<!CloudFront)\s배포 ?ID", text), "write `CloudFront 배포 ID`"


def test_detached_particle_pattern() -> None:
    """The particle check finds `role-to-assume` 을 and Action 입니다, not `a`을 or 이 문서."""
    assert DETACHED_PARTICLE.search("`role-to-assume` 을 지정")
    assert DETACHED_PARTICLE.search("GitHub Action 입니다.")
    assert not DETACHED_PARTICLE.search("`role-to-assume`을 지정, GitHub Action입니다.")
    assert not DETACHED_PARTICLE.search("S3 이 문서")


def _bucket_policy() -> dict[str, Any]:
    """The README's bucket policy: the JSON block that grants `cloudfront.amazonaws.com`."""
    for block in re.findall(r"```json\n(.*?)```", _text(EN), re.DOTALL):
        policy = json.loads(block)
        if "cloudfront.amazonaws.com" in block and isinstance(policy, dict):
            return policy
    raise AssertionError("README.md shows no bucket policy for cloudfront.amazonaws.com")


def _arn_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN wildcards: `*` any run of characters (`/` included), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def test_bucket_policy_lets_only_this_distribution_read_and_keeps_the_record_private() -> None:
    """OAC: CloudFront may read the site for this distribution only (`AWS:SourceArn`), and
    is denied the deploy record at the root and under any `destination-prefix`."""
    statements = _bucket_policy()["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert len(allow) == 1 and len(deny) == 1
    assert allow[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow[0]["Action"] == "s3:GetObject"
    source = allow[0]["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert re.fullmatch(r"arn:aws:cloudfront::\d{12}:distribution/E[0-9A-Z]+", source)
    assert deny[0]["Principal"] == allow[0]["Principal"]  # the deploy's own reads stay allowed
    assert deny[0]["Action"] == "s3:GetObject"
    bucket = "arn:aws:s3:::my-site-bucket/"
    denied = deny[0]["Resource"]
    for prefix in ("", "app/", "preview/pr-42/", "a/b/c/"):
        key = prefix + RECORD_BASENAME  # where the program writes the record
        assert any(_arn_matches(p, bucket + key) for p in denied), key
        assert _arn_matches(allow[0]["Resource"], bucket + key)
    for key in ("index.html", "app/index.html", "assets/app.js", "x.s3-cloudfront-deploy.json"):
        assert not any(_arn_matches(p, bucket + key) for p in denied), key
