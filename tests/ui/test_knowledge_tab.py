"""Knowledge tab handlers: create by name, background indexing with progress, documents, remove, test query."""

from __future__ import annotations

import io
import time
import uuid
import zipfile

import gradio as gr
import pytest

from ui.helpers import bind
from ui.tabs import knowledge


def call(services, fn, *args):
    return bind(fn, services)(*args)


def wait_for(services, name, timeout=120.0):
    end = time.time() + timeout
    job = services.jobs.latest("index", name)
    while job.running and time.time() < end:
        time.sleep(0.05)
    return job


@pytest.fixture
def new_kb(services):
    name = f"kb-{uuid.uuid4().hex[:8]}"
    picker, status = call(services, knowledge.create_index, name, 64, 8, "auto")
    assert picker.value == name and (name, name) in picker.choices and name in status
    return name


def test_upload_is_indexed_in_the_background_and_listed(services, new_kb, tmp_path):
    doc = tmp_path / "guide.md"
    doc.write_text("# Setup\n\nPress the red button twice to reset the router.", encoding="utf-8")
    archive = tmp_path / "more.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("faq.txt", "The warranty lasts two years.")
        z.writestr("notes.html", "<p>Support is open on weekdays.</p>")
    archive.write_bytes(buf.getvalue())
    status, timer, job_id = call(services, knowledge.add_documents, new_kb, [str(doc), str(archive)], False)
    assert "Indexing 2 file(s)" in status and timer.active is True
    job = wait_for(services, new_kb)
    assert job.id == job_id and job.status == "finished", job.error
    text, docs, _, timer = call(services, knowledge.index_status, new_kb)
    assert "3 added" in text and timer.active is False
    assert sorted(docs["source"]) == ["guide.md", "more.zip/faq.txt", "more.zip/notes.html"]
    assert all(docs["chunks"] >= 1)
    assert not (services.workspace.root / "uploads").exists() or not any(
        (services.workspace.root / "uploads").iterdir()
    )
    hits = call(services, knowledge.test_query, new_kb, "How do I reset the router?", 2, False)
    assert hits.loc[0, "source"] == "guide.md" and 0 < hits.loc[0, "score"] <= 1 and len(hits) == 2


def test_remove_takes_a_document_out(services, new_kb, tmp_path):
    for name, text in {"a.txt": "Apples are red.", "b.txt": "Bananas are yellow."}.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    call(services, knowledge.add_documents, new_kb, [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], False)
    wait_for(services, new_kb)
    status, docs, picker = call(services, knowledge.remove_document, new_kb, "a.txt")
    assert "Removed **a.txt**" in status and list(docs["source"]) == ["b.txt"]
    assert [c[0] for c in picker.choices] == ["b.txt"]
    with pytest.raises(gr.Error, match="not in the knowledge base"):
        call(services, knowledge.remove_document, new_kb, "a.txt")


def test_bad_files_are_reported_per_file(services, new_kb, tmp_path):
    good, empty = tmp_path / "good.txt", tmp_path / "empty.txt"
    good.write_text("Cats sleep a lot.", encoding="utf-8")
    empty.write_text("   ", encoding="utf-8")
    call(services, knowledge.add_documents, new_kb, [str(good), str(empty)], False)
    assert wait_for(services, new_kb).status == "finished"
    text = call(services, knowledge.index_status, new_kb)[0]
    assert "1 added" in text and "empty.txt" in text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("virus.exe", b"MZ", "not a supported document type"),
        ("huge.txt", b"x" * (2 * 2**20), "over the 1 MB upload limit"),
    ],
)
def test_wrong_or_oversized_uploads_are_refused(services, new_kb, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(gr.Error, match=message):
        call(services, knowledge.add_documents, new_kb, [str(path)], False)
    assert services.jobs.latest("index", new_kb) is None


@pytest.mark.parametrize(
    ("name", "chunk", "overlap", "message"),
    [
        ("", 200, 40, "type a name"),
        ("../escape", 200, 40, "letters, digits"),
        ("facts", 200, 40, "exists already"),
        ("fine", 50, 60, "overlap must be smaller than chunk_size"),
    ],
)
def test_bad_knowledge_base_settings_are_user_errors(services, name, chunk, overlap, message):
    with pytest.raises(gr.Error, match=message):
        call(services, knowledge.create_index, name, chunk, overlap, "auto")


def test_no_knowledge_base_chosen_says_how_to_make_one(services):
    for fn, args in [(knowledge.add_documents, ("", [], False)), (knowledge.test_query, ("", "q", 3, False))]:
        with pytest.raises(gr.Error, match="create one in the Knowledge tab"):
            call(services, fn, *args)
    assert "create one" in call(services, knowledge.index_status, "")[0]


def test_query_on_an_empty_knowledge_base_asks_for_documents(services, new_kb):
    with pytest.raises(gr.Error, match="has no documents yet"):
        call(services, knowledge.test_query, new_kb, "anything", 3, False)
