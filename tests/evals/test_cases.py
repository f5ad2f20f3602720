"""Case files and suite configs: a bad file is refused naming the file, the line and the
field."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.cases import CaseFileError, load_cases
from evals.scorers.tools import ToolsCase
from evals.suite import list_suites, load_suite


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    return path


def test_every_suite_and_every_case_file_of_the_repository_loads() -> None:
    from evals.scorers.answers import AnswersCase
    from evals.scorers.metrics import MetricsCase
    from evals.scorers.model import ModelCase
    from evals.scorers.retrieval import RetrievalCase

    models = {"tools": ToolsCase, "metrics": MetricsCase, "retrieval": RetrievalCase,
              "model": ModelCase, "answers": AnswersCase}  # fmt: skip
    suites = {s.name: s for s in list_suites()}
    assert {"retrieval", "metrics", "tools", "model", "triage", "answers", "questions"} <= set(
        suites
    )
    for suite in suites.values():
        assert set(suite.config.splits) == {"dev", "heldout"}
        for split in suite.config.splits:
            files = [] if suite.config.kind == "triage" else suite.case_files(split)
            if all(path.suffix == ".yaml" for path in files) and files:
                assert suite.load(split, models[suite.config.kind])


def test_a_missing_field_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "cases:\n  - id: a\n    message: hi\n    expect: {tool: x}\n"
                           "  - id: b\n    message: hello\n")  # fmt: skip
    with pytest.raises(CaseFileError) as caught:
        load_cases(path, ToolsCase)
    assert str(caught.value) == f"{path}:5: cases[1].expect: Field required"


def test_a_wrong_type_and_an_unknown_field_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "cases:\n  - id: a\n    message: [1, 2]\n    expect: {tool: x}\n")
    with pytest.raises(CaseFileError, match=r"cases.yaml:2: cases\[0\]\.message: Input should be"):
        load_cases(path, ToolsCase)
    path = write(
        tmp_path, "cases:\n  - id: a\n    message: m\n    expect: {tool: x}\n    mesage: y\n"
    )
    with pytest.raises(CaseFileError, match=r"cases\[0\]\.mesage: Extra inputs"):
        load_cases(path, ToolsCase)


def test_twice_the_same_id_not_yaml_and_no_list_are_refused(tmp_path: Path) -> None:
    case = "  - id: a\n    message: m\n    expect: {tool: x}\n"
    with pytest.raises(CaseFileError, match="'a' is used twice"):
        load_cases(write(tmp_path, "cases:\n" + case + case), ToolsCase)
    with pytest.raises(CaseFileError, match=r"cases.yaml:3: not YAML"):
        load_cases(write(tmp_path, "cases:\n  - [unclosed\n"), ToolsCase)
    with pytest.raises(CaseFileError, match="a list of cases is required"):
        load_cases(write(tmp_path, "questions: []\n"), ToolsCase)


def test_an_unknown_suite_and_a_bad_config_are_explained(tmp_path: Path) -> None:
    with pytest.raises(
        CaseFileError,
        match="no suite 'nope'; known: answers, logs, metrics, model, questions, retrieval, tools",
    ):
        load_suite("nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "suite.yaml").write_text("name: bad\nkind: poetry\n")
    with pytest.raises(CaseFileError, match=r"suite.yaml: kind: Input should be"):
        load_suite("bad", tmp_path)
