"""One source of truth: action.yml, Settings, the CLI and the README follow deployer.interface."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from deployer.interface import INPUTS, OUTPUTS
from deployer.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _action() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_action_inputs_match_the_interface() -> None:
    """action.yml declares exactly the interface's inputs, in order, same default and text."""
    inputs = _action()["inputs"]
    assert list(inputs) == [spec.name for spec in INPUTS]
    for spec in INPUTS:
        declared = inputs[spec.name]
        assert str(declared.get("default", "")) == spec.default, spec.name
        assert declared["description"] == spec.description, spec.name


def test_only_bucket_is_required_and_says_so() -> None:
    """`required: true` exactly where the description says `Required.`."""
    inputs = _action()["inputs"]
    for spec in INPUTS:
        required = bool(inputs[spec.name].get("required", False))
        assert required == spec.description.endswith("Required."), spec.name
    assert [name for name, item in inputs.items() if item.get("required")] == ["bucket"]


def test_every_input_description_states_its_default() -> None:
    """Each input's description says its default (or that it is required)."""
    for spec in INPUTS:
        assert "Default:" in spec.description or "Required." in spec.description, spec.name


def test_action_outputs_match_the_interface() -> None:
    """action.yml declares exactly the interface's outputs with the same descriptions."""
    outputs = _action()["outputs"]
    assert list(outputs) == [spec.name for spec in OUTPUTS]
    for spec in OUTPUTS:
        assert outputs[spec.name]["description"] == spec.description, spec.name


def test_settings_aliases_are_the_inputs() -> None:
    """Every Settings field alias is an input, and every input has a Settings field."""
    aliases = {field.alias for field in Settings.model_fields.values() if field.alias}
    assert aliases == {spec.name for spec in INPUTS}


def test_secret_inputs_are_secret_fields() -> None:
    """Inputs flagged secret are exactly the SecretStr fields (so they are masked and hidden)."""
    secret_fields = {
        field.alias
        for field in Settings.model_fields.values()
        if field.alias and "SecretStr" in str(field.annotation)
    }
    assert secret_fields == {spec.name for spec in INPUTS if spec.secret}


def test_boolean_inputs_default_to_true_or_false() -> None:
    """Boolean inputs have a `true`/`false` default and are bool fields."""
    fields = {f.alias: f for f in Settings.model_fields.values() if f.alias}
    for spec in INPUTS:
        is_bool = fields[spec.name].annotation is bool
        assert spec.boolean == is_bool, spec.name
        if spec.boolean:
            assert spec.default in ("true", "false"), spec.name


def test_cli_has_a_flag_per_input() -> None:
    """`s3-cloudfront-deploy --<input>` exists for every input."""
    cli = pytest.importorskip("deployer.cli")
    parser = cli.build_parser()
    flags = {flag for action in parser._actions for flag in action.option_strings}
    assert {spec.flag for spec in INPUTS} <= flags


def test_local_variables_are_unique_and_documented_shapes() -> None:
    """Each input has its own local variable: `S3CFD_*` or the standard `AWS_REGION`."""
    names = [spec.env_var for spec in INPUTS]
    assert len(set(names)) == len(names)
    for spec in INPUTS:
        assert re.fullmatch(r"S3CFD_[A-Z0-9_]+|AWS_REGION", spec.env_var), spec.name


def test_readme_tables_are_current(gen_tables: ModuleType) -> None:
    """Both READMEs hold the tables `python docs/gen_tables.py --write` would write today."""
    gen = gen_tables
    for path, tables in gen.READMES.items():
        text = path.read_text(encoding="utf-8")
        for name in tables:
            assert gen.block(name, tables) in text, (
                f"{path.name}: run `python docs/gen_tables.py --write` ({name})"
            )
        assert gen.render(text, tables, path.name) == text


def test_readme_names_every_input_and_output_in_code_style() -> None:
    """Every input and output and every local variable appears as `code` in the README."""
    readme = _readme()
    for spec in INPUTS:
        assert f"`{spec.name}`" in readme, spec.name
        assert f"`{spec.env_var}`" in readme, spec.env_var
    for out in OUTPUTS:
        assert f"`{out.name}`" in readme, out.name


def _our_steps(node: object) -> list[dict[str, Any]]:
    """Every workflow step (in parsed YAML) that uses this action."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "s3-cloudfront-deploy" in str(node.get("uses", "")):
            found.append(node)
        for value in node.values():
            found += _our_steps(value)
    elif isinstance(node, list):
        for item in node:
            found += _our_steps(item)
    return found


def test_readme_workflows_parse_and_use_only_real_inputs() -> None:
    """Every YAML example in the README parses; steps using the action pass only real inputs."""
    known = {spec.name for spec in INPUTS}
    steps: list[dict[str, Any]] = []
    for path in (ROOT / "README.md", ROOT / "README.ko.md"):
        for block in re.findall(r"```ya?ml\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL):
            steps += _our_steps(yaml.safe_load(block))
    assert len(steps) >= 8
    for step in steps:
        unknown = set(step.get("with") or {}) - known
        assert not unknown, f"README YAML uses unknown inputs: {sorted(unknown)}"
        assert "bucket" in (step.get("with") or {}), step


def test_gen_tables_check_mode_agrees(
    gen_tables: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--check` exits 0 on the committed README."""
    assert gen_tables.main(["--check"]) == 0
    capsys.readouterr()


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("name", ["README.md", "README.ko.md"])
def test_readme_json_parses_and_links_resolve(name: str) -> None:
    """Every JSON policy example parses, and every `#anchor` link points at a heading."""
    text = (ROOT / name).read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, re.DOTALL)
    assert blocks
    for block in blocks:
        json.loads(block)
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}
    english = {_anchor(h) for h in re.findall(r"^#+ (.+)$", _readme(), flags=re.MULTILINE)}
    for target, anchor in re.findall(r"\]\(([\w.]*)#([^)]+)\)", text):
        pool = english if target == "README.md" else anchors
        assert anchor in pool, f"{name}: broken link #{anchor}"
