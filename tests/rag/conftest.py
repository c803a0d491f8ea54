"""Fixtures for the rag tests: the embedded embedder (loaded once), file builders and a small knowledge base."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rag import Embedder, IndexConfig, KnowledgeBase

WIKI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "llamafactory" / "wiki_demo.txt"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder.load()


class SpyModel:
    """Wraps a SentenceTransformer and records every text it is asked to encode."""

    def __init__(self, model) -> None:
        self.model = model
        self.texts: list[str] = []

    def encode(self, texts, **kwargs):
        self.texts.extend(texts)
        return self.model.encode(texts, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


@pytest.fixture
def spy_embedder(embedder) -> Embedder:
    """The embedded embedder behind a spy: `spy_embedder.model.texts` lists what was embedded."""
    return Embedder(SpyModel(embedder.model), embedder.model_id)


@pytest.fixture
def small_config() -> IndexConfig:
    return IndexConfig(chunk_size=64, overlap=16)


@pytest.fixture
def docs_dir(tmp_path) -> Path:
    """Three small text files on different topics."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "volcano.txt").write_text(
        "Volcanoes form where magma reaches the surface. Mount Etna in Sicily is one of the most active "
        "volcanoes in Europe.\n\nLava flows can destroy villages but also create fertile soil.",
        encoding="utf-8",
    )
    (folder / "bread.md").write_text(
        "# Baking bread\n\nKnead the dough for ten minutes until it is elastic.\n\n## Proofing\n\n"
        "Let the dough rise in a warm place for an hour, until it doubles in size.",
        encoding="utf-8",
    )
    (folder / "chess.txt").write_text(
        "In chess, castling moves the king two squares towards a rook. The rook then jumps over the king. "
        "Castling is not allowed when the king is in check.",
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def kb(tmp_path, embedder, small_config, docs_dir) -> KnowledgeBase:
    kb = KnowledgeBase.create(tmp_path / "kb", embedder, small_config)
    report = kb.add_paths([docs_dir])
    assert not report.errors, report.errors
    return kb


def _make_pdf(pages: list[str]) -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for text in pages:
        for line_number, line in enumerate(text.split("\n")):
            pdf.drawString(72, 720 - 14 * line_number, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _make_docx(blocks: list[tuple[str, str]]) -> bytes:
    """blocks: ("heading", text), ("paragraph", text) or ("table", "a|b;c|d")."""
    import docx

    document = docx.Document()
    for kind, text in blocks:
        if kind == "heading":
            document.add_heading(text, level=1)
        elif kind == "table":
            rows = [row.split("|") for row in text.split(";")]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
        else:
            document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def make_pdf():
    """make_pdf(["page one text", "page two text"]) -> PDF bytes (reportlab)."""
    return _make_pdf


@pytest.fixture(scope="session")
def make_docx():
    """make_docx([("heading", "Title"), ("paragraph", "..."), ("table", "a|b;c|d")]) -> DOCX bytes."""
    return _make_docx
