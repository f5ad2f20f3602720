from __future__ import annotations

import threading
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


def test_event_ids_are_taken_once_even_concurrently(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.first_sight(event_id="Ev1")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_conversations_are_known_by_thread(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert not store.has_conversation(channel="C1", thread_ts="1.1")
    tid = store.start_conversation(channel="C1", thread_ts="1.1", user="U1")
    assert tid == conversation_id("C1", "1.1") == "slack:C1:1.1"
    assert store.start_conversation(channel="C1", thread_ts="1.1", user="U2") == tid
    assert store.has_conversation(channel="C1", thread_ts="1.1")


def test_old_event_ids_are_pruned(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlmodel import Session, select

    from bot.store import SEEN_EVENT_TTL, SeenEvent

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with Session(store.engine) as session:
        session.add(SeenEvent(event_id="EvOLD", at=datetime.now(UTC) - 2 * SEEN_EVENT_TTL))
        session.commit()
    assert store.first_sight(event_id="EvNEW")
    with Session(store.engine) as session:
        assert [e.event_id for e in session.exec(select(SeenEvent))] == ["EvNEW"]
