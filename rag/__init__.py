"""Knowledge base for the RAG arms: documents in, FAISS index, cited retrieval, prompt augmentation.

Public API (everything the app and `evals` need)::

    from rag import Embedder, IndexConfig, KnowledgeBase, ReadOptions, augment

    embedder = Embedder.load()                                 # embedded all-MiniLM-L6-v2, or Embedder.load("hub/id")
    kb = KnowledgeBase.open(ws.indexes_dir / name, embedder, IndexConfig(), workspace=ws)  # or create / load
    report = kb.add_paths(paths, ReadOptions(lines_as_documents=False), progress=cb)  # -> AddReport, never raises
    kb.remove("manual.pdf")                                    # a file, or every file under a folder/zip name
    kb.documents()                                             # [SourceInfo(source, chunks, documents, hash)]
    kb.stats()                                                 # dict: sources, documents, chunks, index, ...
    hits = kb.search(question, k=5, min_score=None, mmr=False, hybrid=False)   # -> [Hit]
    result = augment(question, hits, budget_tokens, count_tokens)  # -> Augmented(messages, sources, left_out)

    load_embedder(model_id=None, device=None)  # a SentenceTransformer (evals: similarity scoring)
    resolve_embedder(model_id)                 # where it loads from (embedded folder, local folder or hub id)

Progress callbacks are `progress(done: int, total: int, message: str)`. With `workspace=` every save also
records the index in the workspace registry (`Workspace.record_index`). CLI: `python -m rag --help`.
Modules: readers/ingest (files -> documents), chunk, embed, store (files on disk, FAISS), index
(KnowledgeBase), retrieve (dense, MMR, BM25 + RRF), augment (messages with numbered sources).
"""

from rag.augment import Augmented, Source, augment
from rag.chunk import Chunk, chunk_document
from rag.config import IndexConfig, ReadOptions
from rag.embed import DEFAULT_EMBEDDER, Embedder, load_embedder, resolve_embedder
from rag.index import AddReport, KnowledgeBase, SourceInfo
from rag.readers import Document
from rag.retrieve import Hit

__all__ = [
    "DEFAULT_EMBEDDER",
    "AddReport",
    "Augmented",
    "Chunk",
    "Document",
    "Embedder",
    "Hit",
    "IndexConfig",
    "KnowledgeBase",
    "ReadOptions",
    "Source",
    "SourceInfo",
    "augment",
    "chunk_document",
    "load_embedder",
    "resolve_embedder",
]
