"""`python -m rag`: index, query (text and JSON), remove, stats, and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.__main__ import main
from rag.embed import Embedder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(monkeypatch, embedder):
    """main() with Embedder.load returning the session embedder (and recording which id was asked for)."""
    asked = []

    def load(cls, model_id=None, device=None):
        asked.append(model_id)
        return embedder

    monkeypatch.setattr(Embedder, "load", classmethod(load))
    main.asked = asked
    return main


def test_index_query_remove_stats(cli, docs_dir, tmp_path, capsys):
    index = tmp_path / "idx"
    (docs_dir / "broken.docx").write_text("not a zip")
    assert cli(["index", str(docs_dir), "--index", str(index), "--chunk-size", "64", "--overlap", "8"]) == 1
    out, err = capsys.readouterr()
    assert "error: docs/broken.docx: is not a valid .docx" in err
    assert "3 added, 0 replaced, 0 unchanged, 0 skipped, 1 failed" in out

    assert cli(["query", "--index", str(index), "active volcano in Sicily", "--k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["rank"] for h in hits] == [1, 2]
    assert set(hits[0]) >= {"rank", "score", "source", "page", "text"}
    assert hits[0]["source"] == "docs/volcano.txt" and "Etna" in hits[0]["text"]

    assert cli(["query", "--index", str(index), "castling", "--k", "1", "--hybrid"]) == 0
    assert capsys.readouterr().out.startswith("[1] ")

    assert cli(["remove", "--index", str(index), "docs/volcano.txt"]) == 0
    assert "removed docs/volcano.txt" in capsys.readouterr().out
    assert cli(["stats", "--index", str(index), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["sources"], stats["chunk_size"], stats["overlap"]) == (2, 64, 8)
    assert [s["source"] for s in stats["sources_list"]] == ["docs/bread.md", "docs/chess.txt"]
    # Query and remove load the embedder the index was built with.
    assert cli.asked == [
        None,
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "--index", "{missing}", "hello"], "is not a knowledge base"),
        (["remove", "--index", "{index}", "nope.txt"], "'nope.txt' is not in the knowledge base"),
        (
            ["index", "{docs}", "--index", "{index}", "--chunk-size", "100"],
            "built with chunk_size=64 (asked 100)",
        ),
        (
            ["index", "{docs}", "--index", "{new}", "--overlap", "250"],
            "overlap must be smaller than chunk_size",
        ),
    ],
)
def test_user_errors_print_one_line_and_exit_2(cli, docs_dir, tmp_path, capsys, argv, message):
    index = tmp_path / "idx"
    assert cli(["index", str(docs_dir), "--index", str(index), "--chunk-size", "64"]) == 0
    capsys.readouterr()
    paths = {"missing": tmp_path / "missing", "index": index, "docs": docs_dir, "new": tmp_path / "new"}
    assert cli([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_python_dash_m_rag_runs(kb):
    result = subprocess.run(
        [sys.executable, "-m", "rag", "stats", "--index", str(kb.path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "sources: 3" in result.stdout and "docs/chess.txt: 1 documents" in result.stdout
