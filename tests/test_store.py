from __future__ import annotations

from pathlib import Path

from bot.store import Store, conversation_id


def test_audit_records_who_sent_what(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x' / 'db.sqlite'}")
    store.audit(source="slack", user="U1", action="/ops ask", text="why?", channel="C1")
    store.audit(source="cli", user="ana", action="chat", text="how?")
    log = store.audit_log()
    assert [(r.source, r.user, r.action, r.text) for r in log] == [
        ("cli", "ana", "chat", "how?"),
        ("slack", "U1", "/ops ask", "why?"),
    ]
    assert log[0].at >= log[1].at


def test_conversations_are_known_by_thread(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert not store.has_conversation(channel="C1", thread_ts="1.1")
    tid = store.start_conversation(channel="C1", thread_ts="1.1", user="U1")
    assert tid == conversation_id("C1", "1.1") == "slack:C1:1.1"
    assert store.start_conversation(channel="C1", thread_ts="1.1", user="U2") == tid
    assert store.has_conversation(channel="C1", thread_ts="1.1")


def test_a_database_made_before_migrations_is_stamped_and_upgraded(tmp_path: Path) -> None:
    """Tables made by the old create_all, no alembic_version: upgraded in place, rows kept."""
    from sqlalchemy import create_engine, inspect, text

    from bot.migrate import current_revision, head_revision

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    legacy = create_engine(url)
    with legacy.begin() as conn:
        conn.execute(text(
            "CREATE TABLE audit_record (id INTEGER PRIMARY KEY, source VARCHAR(32) NOT NULL, "
            "user VARCHAR(64) NOT NULL, action VARCHAR(64) NOT NULL, text VARCHAR(4000) NOT NULL, "
            "channel VARCHAR(64), thread_ts VARCHAR(32), at DATETIME NOT NULL)"
        ))  # fmt: skip
        conn.execute(
            text("CREATE TABLE seen_event (event_id VARCHAR(64) PRIMARY KEY, at DATETIME)")
        )
        conn.execute(text(
            "INSERT INTO audit_record (source, user, action, text, at) "
            "VALUES ('slack', 'U1', '/ops ask', 'why?', '2026-11-01 10:00:00')"
        ))  # fmt: skip
    store = Store(url)
    assert current_revision(store.engine) == head_revision()
    assert [r.text for r in store.audit_log()] == ["why?"]
    tables = set(inspect(store.engine).get_table_names())
    assert {"job", "rate_hit", "incident", "conversation"} <= tables
    assert "seen_event" not in tables
