"""Command line for knowledge bases.

    python -m rag index PATH... --index DIR [--chunk-size N] [--overlap N] [--embedder ID] [--lines-as-documents]
    python -m rag query --index DIR "QUESTION" [--k N] [--hybrid] [--mmr] [--min-score X] [--json]
    python -m rag remove --index DIR SOURCE
    python -m rag stats --index DIR [--json]

`index` creates the index folder or updates it (changed files replaced, unchanged ones skipped); files that
cannot be read are listed and the exit status is 1, the others are still indexed. Other user errors print one
line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from rag.config import INDEX_TYPES, IndexConfig, ReadOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    index = sub.add_parser("index", help="add or update files, folders and .zip archives")
    index.add_argument("paths", nargs="+", metavar="PATH")
    index.add_argument("--index", required=True, type=Path, metavar="DIR")
    index.add_argument("--chunk-size", type=int, help=_help("chunk_size"))
    index.add_argument("--overlap", type=int, help=_help("overlap"))
    index.add_argument("--index-type", choices=INDEX_TYPES, help=_help("index_type"))
    index.add_argument(
        "--embedder", help="sentence-transformers hub id or folder (default: all-MiniLM-L6-v2)"
    )
    index.add_argument(
        "--lines-as-documents", action="store_true", help="each line of a .txt file is a document"
    )
    index.add_argument("--text-columns", help=".csv/.jsonl columns to index, comma-separated")
    query = sub.add_parser("query", help="search an index")
    query.add_argument("--index", required=True, type=Path, metavar="DIR")
    query.add_argument("question")
    query.add_argument("--k", type=int, default=5)
    query.add_argument("--hybrid", action="store_true", help="fuse BM25 keyword search with dense search")
    query.add_argument("--mmr", action="store_true", help="diversify results (maximal marginal relevance)")
    query.add_argument("--min-score", type=float, help="drop hits with cosine similarity below this")
    query.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {rank, score, source, page, text, record, heading, similarity}",
    )
    remove = sub.add_parser("remove", help="remove a file (or a folder's or archive's files) from an index")
    remove.add_argument("--index", required=True, type=Path, metavar="DIR")
    remove.add_argument("source")
    stats = sub.add_parser("stats", help="show what an index holds")
    stats.add_argument("--index", required=True, type=Path, metavar="DIR")
    stats.add_argument("--json", action="store_true")
    return parser


def _help(name: str) -> str:
    return next(f.metadata["help"] for f in fields(IndexConfig) if f.name == name)


def _progress_bar():
    """A progress(done, total, message) callback drawing one tqdm bar per phase."""
    from tqdm import tqdm

    state: dict = {}

    def progress(done: int, total: int, message: str) -> None:
        bar = state.get("bar")
        if bar is None or state.get("message") != message:
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(total=total, desc=message, unit="it", file=sys.stderr)
            state["message"] = message
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            state["bar"] = None

    return progress


def _embedder_for(index_dir: Path, model_id: str | None):
    from rag.embed import Embedder
    from rag.store import is_index_dir, read_manifest

    if model_id is None and is_index_dir(index_dir):
        model_id = read_manifest(index_dir)["embedder"]
    return Embedder.load(model_id)


def cmd_index(args: argparse.Namespace) -> int:
    from rag.index import KnowledgeBase
    from rag.store import is_index_dir, read_manifest

    overrides = {"chunk_size": args.chunk_size, "overlap": args.overlap, "index_type": args.index_type}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    base = read_manifest(args.index)["config"] if is_index_dir(args.index) else {}
    config = IndexConfig.from_dict({**base, **overrides})
    columns = tuple(c for c in args.text_columns.split(",")) if args.text_columns else None
    options = ReadOptions(lines_as_documents=args.lines_as_documents, text_columns=columns)
    kb = KnowledgeBase.open(args.index, _embedder_for(args.index, args.embedder), config)
    report = kb.add_paths(args.paths, options, progress=_progress_bar())
    for message in report.skipped:
        print(f"skipped: {message}")
    for message in report.errors:
        print(f"error: {message}", file=sys.stderr)
    stats = kb.stats()
    print(
        f"{report.summary()}\n{args.index}: {stats['sources']} sources, {stats['documents']} documents, "
        f"{stats['chunks']} chunks ({stats['index']})"
    )
    return 1 if report.errors else 0


def cmd_query(args: argparse.Namespace) -> int:
    from rag.index import KnowledgeBase

    kb = KnowledgeBase.load(args.index, _embedder_for(args.index, None))
    hits = kb.search(args.question, k=args.k, min_score=args.min_score, mmr=args.mmr, hybrid=args.hybrid)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
        return 0
    for hit in hits:
        text = " ".join(hit.text.split())
        print(
            f"[{hit.rank}] {hit.score:.3f}  {hit.citation}\n    {text[:300]}{'...' if len(text) > 300 else ''}"
        )
    if not hits:
        print("no hits")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from rag.index import KnowledgeBase

    kb = KnowledgeBase.load(args.index, _embedder_for(args.index, None))
    removed = kb.remove(args.source)
    print(f"removed {args.source}: {removed} chunks; {len(kb.documents())} sources left")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from rag.store import stats_at

    stats, sources = stats_at(args.index)
    if args.json:
        print(json.dumps({**stats, "sources_list": sources}, indent=2, ensure_ascii=False))
        return 0
    for key, value in stats.items():
        print(f"{key:>14}: {value}")
    for source in sources:
        print(f"  {source['source']}: {source['documents']} documents, {source['chunks']} chunks")
    return 0


COMMANDS = {"index": cmd_index, "query": cmd_query, "remove": cmd_remove, "stats": cmd_stats}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
