from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import EMBEDDED_MODEL, Settings, SettingsError, load_settings


def test_defaults_need_no_settings(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    assert s.index_dir == tmp_path / "index"
    assert s.database_url == f"sqlite:///{tmp_path / 'opsbot.sqlite'}"
    assert s.llm.url is None and s.llm.assists is False
    assert s.slack.api_url == "https://slack.com/api/"


def test_nested_variables_use_one_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSBOT_SLACK_BOT_TOKEN", "xoxb-1-2")
    monkeypatch.setenv("OPSBOT_SLACK_SIGNING_SECRET", "s3cret")
    monkeypatch.setenv("OPSBOT_SLACK_API_URL", "http://127.0.0.1:3001/api")
    monkeypatch.setenv("OPSBOT_LLM_URL", "http://vllm:8000/v1/")
    monkeypatch.setenv("OPSBOT_LLM_MODEL", "qwen2.5-7b")
    monkeypatch.setenv("OPSBOT_DATA_DIR", "/srv/opsbot")
    monkeypatch.setenv("OPSBOT_DATABASE_URL", "postgresql+psycopg://u@db/opsbot")
    monkeypatch.setenv("OPSBOT_INDEX_DIR", "/srv/index")
    monkeypatch.setenv("OPSBOT_PORT", "8088")
    s = load_settings()
    assert s.slack.bot_token is not None and s.slack.bot_token.get_secret_value() == "xoxb-1-2"
    assert s.slack.api_url == "http://127.0.0.1:3001/api/"
    assert s.llm.url == "http://vllm:8000/v1" and s.llm.assists
    assert s.data_dir == Path("/srv/opsbot") and s.index_dir == Path("/srv/index")
    assert s.database_url.startswith("postgresql") and s.port == 8088
    assert "s3cret" not in repr(s)  # secrets never printed


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("OPSBOT_PORT=4000\nOPSBOT_LLM_ASSIST=off\n")
    s = load_settings()
    assert s.port == 4000 and s.llm.assist == "off"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPSBOT_PORT", "eighty"),
        ("OPSBOT_LLM_URL", "vllm:8000"),
        ("OPSBOT_SLACK_BOT_TOKEN", "xoxp-user-token"),
        ("OPSBOT_DATABASE_URL", "mysql://x"),
        ("OPSBOT_LLM_ASSIST", "sometimes"),
    ],
)
def test_a_wrong_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value).startswith(f"{name}: ")
    assert "\n" not in str(err.value)


def test_serving_slack_needs_token_and_secret() -> None:
    with pytest.raises(
        SettingsError, match="OPSBOT_SLACK_BOT_TOKEN and OPSBOT_SLACK_SIGNING_SECRET"
    ):
        Settings().require_slack()


@pytest.mark.parametrize(
    ("url", "model", "assist", "expected"),
    [
        (None, "qwen", "on", False),
        ("http://x/v1", EMBEDDED_MODEL, "auto", False),
        ("http://x/v1", EMBEDDED_MODEL, "on", True),
        ("http://x/v1", "qwen", "auto", True),
        ("http://x/v1", "qwen", "off", False),
    ],
)
def test_assist_setting(url: str | None, model: str, assist: str, expected: bool) -> None:
    s = Settings(llm={"url": url, "model": model, "assist": assist})  # type: ignore[arg-type]
    assert s.llm.assists is expected


def test_every_setting_is_documented() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = []
    for name, field in Settings.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and hasattr(sub, "model_fields"):
            for sub_name, sub_field in sub.model_fields.items():
                assert sub_field.description, f"{name}.{sub_name} has no description"
                env = f"OPSBOT_{name}_{sub_name}".upper()
                if env not in readme:
                    missing.append(env)
        else:
            assert field.description, f"{name} has no description"
            if f"OPSBOT_{name}".upper() not in readme:
                missing.append(f"OPSBOT_{name}".upper())
    assert missing == [], f"settings missing from README.md: {missing}"
