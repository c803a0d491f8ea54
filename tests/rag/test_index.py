"""KnowledgeBase: persistence, incremental updates, bad uploads, crash safety, embedder and config checks."""

from __future__ import annotations

import io
import zipfile

import pytest

from common.workspace import Workspace
from rag import Embedder, IndexConfig, KnowledgeBase, ReadOptions


def _hits(kb, query, **kwargs):
    return [(h.rank, round(h.score, 5), h.source, h.chunk.start, h.text) for h in kb.search(query, **kwargs)]


def test_saved_then_loaded_index_returns_identical_hits(kb, embedder):
    assert sorted(p.name for p in kb.path.iterdir()) == ["chunks.parquet", "index.faiss", "manifest.json"]
    loaded = KnowledgeBase.load(kb.path, embedder)
    for query in ("active volcano in Sicily", "how long should dough rise", "castling rules"):
        before = _hits(kb, query, k=3)
        assert before == _hits(loaded, query, k=3)
    assert _hits(kb, "castling rules", k=3, hybrid=True) == _hits(loaded, "castling rules", k=3, hybrid=True)
    assert loaded.stats() == kb.stats()
    assert kb.search("active volcano in Sicily", k=1)[0].source == "docs/volcano.txt"


def test_documents_and_stats_describe_the_index(kb):
    assert [(d.source, d.documents) for d in kb.documents()] == [
        ("docs/bread.md", 2),
        ("docs/chess.txt", 1),
        ("docs/volcano.txt", 1),
    ]
    stats = kb.stats()
    assert stats["sources"] == 3 and stats["documents"] == 4
    assert stats["chunks"] == sum(d.chunks for d in kb.documents()) == len(kb.chunks)
    assert stats["index"] == "flat" and stats["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert stats["bytes_on_disk"] > 0


def test_changed_document_is_replaced_and_unchanged_ones_are_not_reembedded(tmp_path, spy_embedder, docs_dir):
    kb = KnowledgeBase.create(tmp_path / "kb", spy_embedder, IndexConfig(chunk_size=32, overlap=0))
    first = kb.add_paths([docs_dir])
    assert sorted(first.added) == ["docs/bread.md", "docs/chess.txt", "docs/volcano.txt"]
    assert len(spy_embedder.model.texts) == first.embedded == first.chunks_added == len(kb.chunks)

    spy_embedder.model.texts.clear()
    again = kb.add_paths([docs_dir])
    assert sorted(again.unchanged) == ["docs/bread.md", "docs/chess.txt", "docs/volcano.txt"]
    assert spy_embedder.model.texts == [] and again.chunks_added == 0

    chess = docs_dir / "chess.txt"
    chess.write_text(
        chess.read_text() + "\n\nEn passant lets a pawn capture a pawn that just moved two squares."
    )
    old_chess = [c for c in kb.chunks if c.source == "docs/chess.txt"]
    changed = kb.add_paths([docs_dir])
    assert changed.replaced == ["docs/chess.txt"] and sorted(changed.unchanged) == [
        "docs/bread.md",
        "docs/volcano.txt",
    ]
    # Only chunks whose text is new are embedded; the first chess chunk is unchanged and keeps its vector.
    new_chess = [c for c in kb.chunks if c.source == "docs/chess.txt"]
    old_hashes = {c.hash for c in old_chess}
    assert spy_embedder.model.texts == [c.text for c in new_chess if c.hash not in old_hashes]
    assert changed.reused == len(new_chess) - len(spy_embedder.model.texts) >= 1
    assert changed.chunks_removed == len(old_chess) and changed.chunks_added == len(new_chess)
    assert "En passant" in kb.search("capturing a pawn en passant", k=1)[0].text
    assert len(kb.chunks) == first.chunks_added - len(old_chess) + len(new_chess)


def test_remove_takes_a_file_or_a_folder_out(kb, embedder):
    before = len(kb.chunks)
    volcano = sum(1 for c in kb.chunks if c.source == "docs/volcano.txt")
    assert kb.remove("docs/volcano.txt") == volcano
    assert len(kb.chunks) == before - volcano
    assert all(h.source != "docs/volcano.txt" for h in kb.search("active volcano in Sicily", k=5))
    reloaded = KnowledgeBase.load(kb.path, embedder)
    assert [d.source for d in reloaded.documents()] == ["docs/bread.md", "docs/chess.txt"]
    assert kb.remove("docs") == before - volcano
    assert kb.documents() == [] and kb.search("anything") == []
    with pytest.raises(ValueError, match=r"'docs/volcano\.txt' is not in the knowledge base"):
        kb.remove("docs/volcano.txt")


def _bad_upload(tmp_path, make_pdf) -> list:
    """A folder and a zip of good and bad files, as one upload."""
    from pypdf import PdfReader, PdfWriter

    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "good.txt").write_text(
        "Saturn has the most prominent rings of all planets in the solar system."
    )
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.md").write_text("   \n\n  ")
    (folder / "photo.txt").write_bytes(bytes(range(256)) * 16)
    (folder / "report.docx").write_text("I am not a zip file")
    (folder / "app.html").write_text("<html><script>run()</script></html>")
    (folder / "tool.exe").write_bytes(b"MZ\x00")
    data = make_pdf(["Secret"])
    (folder / "cut.pdf").write_bytes(data[: len(data) // 2])
    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(data)).pages[0])
    writer.encrypt("pw", algorithm="RC4-128")
    with open(folder / "locked.pdf", "wb") as handle:
        writer.write(handle)
    (folder / "copy-of-good.txt").write_bytes((folder / "good.txt").read_bytes())
    with zipfile.ZipFile(tmp_path / "slip.zip", "w") as archive:
        archive.writestr("../../escape.txt", "pwned")
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.txt", b"0" * (2 * 1024 * 1024))
    with zipfile.ZipFile(tmp_path / "fine.zip", "w") as archive:
        archive.writestr("moon.md", "# Moon\n\nThe Moon causes tides on Earth.")
    return [folder, tmp_path / "slip.zip", tmp_path / "bomb.zip", tmp_path / "fine.zip", folder / "good.txt"]


def test_each_bad_file_gets_one_message_and_the_others_are_indexed(
    tmp_path, embedder, small_config, make_pdf
):
    kb = KnowledgeBase.create(tmp_path / "kb", embedder, small_config)
    report = kb.add_paths(_bad_upload(tmp_path, make_pdf), ReadOptions(max_archive_mb=1))
    expected = {
        "upload/empty.txt": "is empty (0 bytes)",
        "upload/blank.md": "is empty",
        "upload/photo.txt": "binary file",
        "upload/report.docx": "not a valid .docx",
        "upload/app.html": "no text outside scripts",
        "upload/tool.exe": "unsupported file type",
        "upload/cut.pdf": "could not be read as a PDF",
        "upload/locked.pdf": "is encrypted",
        "slip.zip": "zip slip",
        "bomb.zip": "zip bomb",
    }
    assert len(report.errors) == len(expected)
    for source, reason in expected.items():
        assert sum(1 for e in report.errors if e.startswith(f"{source}: ") and reason in e) == 1, (
            source,
            report,
        )
    # Folder members are read in name order, so the copy comes first and the original is the duplicate.
    assert report.skipped == [
        "upload/good.txt: same content as upload/copy-of-good.txt, already indexed; skipped",
        "good.txt: same content as upload/copy-of-good.txt, already indexed; skipped",
    ]
    assert sorted(report.added) == ["fine.zip/moon.md", "upload/copy-of-good.txt"]
    assert not (tmp_path.parent / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert kb.search("planet with rings", k=1)[0].text.startswith("Saturn")


def test_crash_while_saving_leaves_the_previous_index(kb, embedder, docs_dir, monkeypatch):
    before = _hits(kb, "active volcano in Sicily", k=5)
    chunks_before = kb.stats()["chunks"]
    (docs_dir / "new.txt").write_text("Penguins live in the southern hemisphere and cannot fly.")

    def broken_write(path, chunks):
        (path.parent / "half-written").write_text("x")
        raise OSError("disk full")

    monkeypatch.setattr("rag.store._write_chunks", broken_write)
    with pytest.raises(OSError, match="disk full"):
        kb.add_paths([docs_dir / "new.txt"])
    monkeypatch.undo()
    assert sorted(p.name for p in kb.path.iterdir()) == ["chunks.parquet", "index.faiss", "manifest.json"]
    assert [p.name for p in kb.path.parent.iterdir() if p.name.startswith(".")] == []
    reloaded = KnowledgeBase.load(kb.path, embedder)
    assert _hits(reloaded, "active volcano in Sicily", k=5) == before
    assert reloaded.stats()["chunks"] == chunks_before
    assert _hits(kb, "active volcano in Sicily", k=5) == before  # memory restored too
    assert kb.add_paths([docs_dir / "new.txt"]).added == ["new.txt"]


def test_crash_between_the_two_renames_of_a_save_is_recovered(kb, embedder):
    before = _hits(kb, "castling rules", k=3)
    kb.path.rename(kb.path.with_name(f".{kb.path.name}.old"))  # what a crash mid-swap leaves behind
    assert KnowledgeBase.open(kb.path, embedder).stats()["sources"] == 3
    assert _hits(KnowledgeBase.load(kb.path, embedder), "castling rules", k=3) == before
    assert not kb.path.with_name(f".{kb.path.name}.old").exists()


def test_crash_while_embedding_leaves_the_previous_index(kb, embedder, docs_dir):
    class Exploding:
        tokenizer = embedder.model.tokenizer
        max_seq_length = embedder.model.max_seq_length

        def get_embedding_dimension(self):
            return embedder.dimension

        def encode(self, texts, **kwargs):
            raise RuntimeError("out of memory")

    (docs_dir / "new.txt").write_text("Penguins cannot fly.")
    broken = KnowledgeBase.load(kb.path, Embedder(Exploding(), embedder.model_id))
    with pytest.raises(RuntimeError, match="out of memory"):
        broken.add_paths([docs_dir / "new.txt"])
    assert KnowledgeBase.load(kb.path, embedder).stats()["sources"] == 3


def test_loading_with_another_embedder_is_a_clear_error(kb, embedder):
    other = Embedder(embedder.model, "someone/other-embedder")
    with pytest.raises(ValueError, match="built with embedder 'sentence-transformers/all-MiniLM-L6-v2'"):
        KnowledgeBase.load(kb.path, other)


def test_open_with_other_settings_or_existing_folder_is_a_clear_error(kb, embedder, small_config, tmp_path):
    assert KnowledgeBase.open(kb.path, embedder, small_config).stats() == kb.stats()
    with pytest.raises(ValueError, match=r"built with chunk_size=64 \(asked 100\)"):
        KnowledgeBase.open(kb.path, embedder, IndexConfig(chunk_size=100, overlap=16))
    with pytest.raises(ValueError, match="already holds a knowledge base"):
        KnowledgeBase.create(kb.path, embedder)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("x")
    with pytest.raises(ValueError, match="other files in it"):
        KnowledgeBase.create(tmp_path / "busy", embedder)
    with pytest.raises(ValueError, match="is not a knowledge base"):
        KnowledgeBase.load(tmp_path / "busy", embedder)


def test_chunk_size_beyond_the_embedder_is_refused(tmp_path, embedder):
    with pytest.raises(ValueError, match=r"chunk_size 300 does not fit embedder .* use chunk_size <= 254"):
        KnowledgeBase.create(tmp_path / "kb", embedder, IndexConfig(chunk_size=300))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_size": 0}, "chunk_size must be a positive integer, got 0"),
        ({"overlap": -1}, "overlap must be a non-negative integer, got -1"),
        ({"chunk_size": 50, "overlap": 50}, r"overlap must be smaller than chunk_size \(50\), got 50"),
        ({"index_type": "ivf"}, "index_type must be one of auto, flat, hnsw, got 'ivf'"),
        ({"hnsw_m": True}, "hnsw_m must be a positive integer, got True"),
    ],
)
def test_bad_index_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IndexConfig(**kwargs)


def test_hnsw_index_gives_the_exact_results_on_a_small_corpus_and_reports_recall(
    tmp_path, embedder, docs_dir, kb
):
    hnsw = KnowledgeBase.create(
        tmp_path / "hnsw", embedder, IndexConfig(chunk_size=64, overlap=16, index_type="hnsw")
    )
    hnsw.add_paths([docs_dir])
    stats = hnsw.stats()
    assert stats["index"] == "hnsw" and stats["recall_at_10"] == 1.0
    assert [h.text for h in hnsw.search("dough", k=3)] == [h.text for h in kb.search("dough", k=3)]
    assert KnowledgeBase.load(hnsw.path, embedder).stats()["index"] == "hnsw"


def test_auto_index_switches_to_hnsw_at_the_threshold(tmp_path, embedder, docs_dir):
    kb = KnowledgeBase.create(
        tmp_path / "kb", embedder, IndexConfig(chunk_size=16, overlap=0, hnsw_threshold=6)
    )
    kb.add_paths([docs_dir / "chess.txt"])
    assert kb.stats()["index"] == "flat"
    kb.add_paths([docs_dir])
    assert len(kb.chunks) >= 6 and kb.stats()["index"] == "hnsw"


def test_workspace_registry_records_the_index(tmp_path, embedder, docs_dir, small_config):
    workspace = Workspace(tmp_path / "ws")
    kb = KnowledgeBase.open(workspace.indexes_dir / "manuals", embedder, small_config, workspace=workspace)
    kb.add_paths([docs_dir])
    rows = workspace.indexes()
    assert [(r["name"], r["documents"], r["chunks"], r["embedder"]) for r in rows] == [
        ("manuals", 3, len(kb.chunks), "sentence-transformers/all-MiniLM-L6-v2")
    ]


def test_records_from_lines_and_rows_are_cited(tmp_path, embedder, small_config):
    (tmp_path / "facts.txt").write_text(
        "The Nile is a long river in Africa.\nMount Everest is the highest mountain.\n"
    )
    (tmp_path / "faq.csv").write_text(
        "id,answer\n1,Reset the router by holding the button.\n2,Call support.\n"
    )
    kb = KnowledgeBase.create(tmp_path / "kb", embedder, small_config)
    kb.add_paths([tmp_path / "facts.txt"], ReadOptions(lines_as_documents=True))
    kb.add_paths([tmp_path / "faq.csv"], ReadOptions(text_columns=("answer",)))
    assert kb.search("highest mountain", k=1)[0].citation == "facts.txt, line 2"
    assert kb.search("how to reset the router", k=1)[0].citation == "faq.csv, row 1"
    assert kb.stats()["documents"] == 4
