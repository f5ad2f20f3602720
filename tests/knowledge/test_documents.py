from __future__ import annotations

from pathlib import Path

from knowledge.documents import (
    MAX_CHUNK_CHARS,
    Document,
    chunk_document,
    corpus_hash,
    load_documents,
    split_front_matter,
)

RUNBOOK = """---
title: Pod crash-looping
alerts: [PodCrashLooping]
---
# Pod crash-looping

Intro text.

## Diagnosis

### Read the previous logs

```bash
# this is a comment, not a heading
kubectl logs -p pod
```

## Mitigation
Roll back.
"""


def test_front_matter_is_parsed_and_removed() -> None:
    meta, body = split_front_matter(RUNBOOK)
    assert meta == {"title": "Pod crash-looping", "alerts": ["PodCrashLooping"]}
    assert body.startswith("# Pod crash-looping")


def test_broken_front_matter_stays_text() -> None:
    meta, body = split_front_matter("---\n: [unclosed\n---\nbody")
    assert meta == {} and body.startswith("---")


def test_chunks_follow_headings_and_keep_code_whole() -> None:
    doc = Document(path="k/Pod.md", title="Pod crash-looping", text=split_front_matter(RUNBOOK)[1])
    chunks = chunk_document(doc)
    assert [c.section for c in chunks] == ["", "Diagnosis > Read the previous logs", "Mitigation"]
    code = chunks[1].text
    assert "# this is a comment, not a heading" in code and code.count("```") == 2
    assert chunks[1].heading == "Pod crash-looping > Diagnosis > Read the previous logs"


def test_long_sections_are_split_at_paragraphs() -> None:
    paragraph = "word " * 100
    doc = Document(path="x.md", title="X", text="## Long\n\n" + "\n\n".join([paragraph] * 10))
    chunks = chunk_document(doc)
    assert len(chunks) > 1
    assert all(c.section == "Long" for c in chunks)
    assert all(len(c.text) <= MAX_CHUNK_CHARS + len(paragraph) for c in chunks)
    assert sum(c.text.count("word") for c in chunks) == 1000  # nothing lost


def test_load_documents_relative_paths_and_titles(tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "Pod.md").write_text(RUNBOOK)
    (tmp_path / "plain.txt").write_text("Restart the cache when it is stale.")
    (tmp_path / "README.md").write_text("# not a runbook")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    docs = load_documents(tmp_path)
    assert [(d.path, d.title) for d in docs] == [
        ("k8s/Pod.md", "Pod crash-looping"),
        ("plain.txt", "plain"),
    ]


def test_corpus_hash_changes_with_content(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\nx")
    before = corpus_hash(load_documents(tmp_path))
    assert before == corpus_hash(load_documents(tmp_path))
    (tmp_path / "a.md").write_text("# A\ny")
    assert corpus_hash(load_documents(tmp_path)) != before
