"""Every kind of job summary, rendered as GitHub renders it, has the structure it means.

The samples are `devtools/summaries.py`'s (a deploy, a first deploy, no change, a dry run,
folded lists, each error family, with the program's own error texts); rendering is
markdown-it-py's `gfm-like` preset. No browser needed: `make summaries` takes the
screenshots to look at.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from devtools.summaries import SAMPLES, Sample, render


class _Shape(HTMLParser):
    """Where each element sits: code blocks inside list items, tables, folds, headings."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.pre_in_li: list[bool] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.items_per_ol: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre":
            self.pre_in_li.append("li" in self.stack)
        if tag == "li" and self.stack and self.stack[-1] == "ol":
            self.items_per_ol[-1] += 1
        if tag == "ol":
            self.items_per_ol.append(0)
        self.tags.append(tag)
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop() == tag:
                break

    def handle_data(self, data: str) -> None:
        if "pre" not in self.stack and "code" not in self.stack:
            self.text.append(data)


def shape(markdown: str) -> _Shape:
    parsed = _Shape()
    parsed.feed(render(markdown))
    return parsed


SAMPLE_NAMES = sorted(SAMPLES)


@pytest.fixture(scope="module")
def samples() -> dict[str, Sample]:
    return {name: make() for name, make in SAMPLES.items()}


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_summary_structure(samples: dict[str, Sample], name: str) -> None:
    """Tables are tables, folds are folds, code blocks stay in their list items, nothing
    Markdown shows through as text."""
    markdown = samples[name].markdown()
    page = shape(markdown)
    assert 'start="' not in render(markdown)  # a numbered list broken in two
    assert page.tags[0] == "h2"
    tables = len(re.findall(r"^\| --- \|", markdown, flags=re.MULTILINE))
    assert page.tags.count("table") == tables
    assert page.tags.count("details") == markdown.count("<details>")
    assert page.tags.count("summary") == markdown.count("<summary>")
    # A fence indented to a list item's content belongs to the item, and renders in it.
    in_items = len(re.findall(r"^ {3}```", markdown, flags=re.MULTILINE))
    at_top = len(re.findall(r"^```", markdown, flags=re.MULTILINE))
    assert page.pre_in_li.count(True) == in_items // 2
    assert page.pre_in_li.count(False) == at_top // 2
    text = "".join(page.text)
    for leak in ("```", "| ---", "<details", "&lt;", "](", "**"):
        assert leak not in text, (leak, text)
    assert not re.search(r"^\s*[-*] ", text, flags=re.MULTILINE)  # a list that did not render


def test_every_family_is_sampled(samples: dict[str, Sample]) -> None:
    """Success, no change, dry run and the error families all have a sample."""
    titles = {name: sample.markdown().splitlines()[0] for name, sample in samples.items()}
    assert titles["deployed"].startswith("## ✅ Deployed to")
    assert titles["dry-run"].startswith("## 🔎 Dry run")
    assert "Nothing to upload" in samples["no-change"].markdown()
    failed = [name for name, title in titles.items() if title.startswith("## ❌")]
    assert len(failed) >= 10


def test_credentials_steps_are_one_numbered_list_with_their_yaml(
    samples: dict[str, Sample],
) -> None:
    """ "No AWS credentials": two numbered ways, each with its YAML inside the item."""
    page = shape(samples["no-credentials"].markdown())
    assert page.items_per_ol == [2]
    assert page.pre_in_li == [True, True, True]
    oidc = shape(samples["oidc-unavailable"].markdown())
    assert oidc.pre_in_li == [False]  # a plain paragraph's YAML stays at the top level


def test_refused_deploy_lists_its_deletions_folded(samples: dict[str, Sample]) -> None:
    """Too many deletions: the 300 objects are listed inside a fold, nothing claims
    "all 0 files", and there is no invalidation section for a deploy that wrote nothing."""
    markdown = samples["too-many-deletions"].markdown()
    page = render(markdown)
    fold = page[page.index("<details>") : page.index("</details>")]
    assert fold.count("<li>") == 300
    assert "all 0 files" not in markdown
    assert "CloudFront invalidation" not in markdown
