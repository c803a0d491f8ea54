"""Knowledge tab: create a knowledge base by name, upload documents (files or a .zip) indexed in the background,
see and remove indexed documents, and try a query to see the chunks the RAG arms would get.

Indexing runs as a background job (`Services.jobs`, kind "index", named after the knowledge base), so the page
stays usable and a reload shows the progress again (a timer polls while a job runs).
"""

from __future__ import annotations

import shutil
import uuid

import gradio as gr
import pandas as pd

from rag import IndexConfig, ReadOptions
from rag.config import INDEX_TYPES
from rag.readers import SUPPORTED_SUFFIXES
from ui.helpers import NO_INDEX, bind, on_load, refresh_on_focus, stage_uploads
from ui.services import Job, Services, safe_name

UPLOAD_SUFFIXES = (*SUPPORTED_SUFFIXES, ".zip")
DOC_COLUMNS = ["source", "chunks", "documents"]
HIT_COLUMNS = ["rank", "score", "similarity", "source", "page", "text"]


def create_index(services: Services, name: str, chunk_size: float, overlap: float, index_type: str):
    """Create an empty knowledge base `name` with these chunking settings; returns the index picker and status."""
    name = (name or "").strip()
    if not name:
        raise ValueError("type a name for the new knowledge base")
    if safe_name(name) != name:
        raise ValueError(
            f"knowledge base name {name!r}: use letters, digits, '.', '_' or '-' only, e.g. {safe_name(name)!r}"
        )
    if name in services.index_names():
        raise ValueError(
            f"a knowledge base named {name!r} exists already: pick it in the list or choose another name"
        )
    config = IndexConfig(chunk_size=int(chunk_size), overlap=int(overlap), index_type=index_type)
    services.kb(name, config, create=True)
    return gr.Dropdown(choices=services.index_names(), value=name), f"Created knowledge base **{name}**."


def add_documents(services: Services, name: str, files, lines_as_documents: bool):
    """Start indexing the uploaded files into `name` in the background; returns the status and the poll timer."""
    if not name:
        raise ValueError(NO_INDEX)
    kb = services.kb(name)
    staging = services.workspace.root / "uploads" / uuid.uuid4().hex
    paths = stage_uploads(files, staging, UPLOAD_SUFFIXES, services.max_upload_mb)
    options = ReadOptions(lines_as_documents=bool(lines_as_documents), max_file_mb=services.max_upload_mb)

    def work(job: Job):
        try:
            with services.kb_lock(name):
                return kb.add_paths(paths, options, progress=job.progress)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    job = services.jobs.start("index", name, work)
    return f"Indexing {len(paths)} file(s) into **{name}**...", gr.Timer(active=True), job.id


def index_status(services: Services, name: str):
    """The latest indexing job of `name` (progress or outcome), its documents, and whether to keep polling."""
    job = services.jobs.latest("index", name) if name else None
    docs, sources = documents(services, name)
    text = job_text(job) if job else ("" if name else NO_INDEX)
    return text, docs, gr.Dropdown(choices=sources, value=None), gr.Timer(active=bool(job and job.running))


def job_text(job: Job) -> str:
    """A job's progress line, or for a finished indexing job what it did (with every file error)."""
    if job.running:
        pct = f"{100 * job.fraction():.0f}% " if job.total else ""
        return f"Indexing **{job.name}**: {pct}{job.message} ({job.done}/{job.total})"
    if job.status == "failed":
        return f"Indexing **{job.name}** failed: {job.error}"
    report = job.result
    lines = [f"Indexed into **{job.name}**: {report.summary()}."]
    lines += [f"- {problem}" for problem in [*report.errors, *report.skipped]]
    return "\n".join(lines)


def documents(services: Services, name: str) -> tuple[pd.DataFrame, list[str]]:
    """Indexed files of `name` with their chunk counts, and their names for the remove picker."""
    if not name or name not in services.index_names():
        return pd.DataFrame(columns=DOC_COLUMNS), []
    docs = services.kb(name).documents()
    frame = pd.DataFrame(
        [{"source": d.source, "chunks": d.chunks, "documents": d.documents} for d in docs],
        columns=DOC_COLUMNS,
    )
    return frame, [d.source for d in docs]


def remove_document(services: Services, name: str, source: str):
    """Remove a file (or every file of an uploaded .zip) from `name`; returns the status and the new lists."""
    if not name:
        raise ValueError(NO_INDEX)
    if not source:
        raise ValueError("pick the document to remove")
    if services.jobs.latest("index", name) and services.jobs.latest("index", name).running:
        raise ValueError(f"{name!r} is being indexed: remove documents when indexing has finished")
    with services.kb_lock(name):
        removed = services.kb(name).remove(source)
    docs, sources = documents(services, name)
    return f"Removed **{source}** ({removed} chunks).", docs, gr.Dropdown(choices=sources, value=None)


def test_query(services: Services, name: str, query: str, k: float, hybrid: bool) -> pd.DataFrame:
    """The chunks a RAG arm would get for `query`, best first, with scores and sources."""
    if not name:
        raise ValueError(NO_INDEX)
    kb = services.kb(name)
    if not kb.documents():
        raise ValueError(f"{name!r} has no documents yet: upload some above")
    hits = kb.search(query or "", k=int(k), hybrid=bool(hybrid))
    rows = [{**{c: h.to_dict()[c] for c in HIT_COLUMNS}} for h in hits]
    return pd.DataFrame(rows, columns=HIT_COLUMNS)


def build(services: Services) -> None:
    gr.Markdown(
        "Documents for the RAG arms: text, Markdown, HTML, PDF, Word, CSV, JSONL or a .zip of them. "
        "They are split into chunks, embedded and kept in a FAISS index per knowledge base.",
        elem_classes="help",
    )
    names = services.index_names()
    job_id = gr.State(None)
    timer = gr.Timer(1.0, active=False)
    with gr.Row():
        with gr.Column(scale=2):
            index = gr.Dropdown(
                names,
                value=names[0] if names else None,
                label="Knowledge base",
                info="the index uploads go to and queries read",
                allow_custom_value=True,
            )
            with gr.Accordion("New knowledge base", open=not names):
                new_name = gr.Textbox(label="Name", placeholder="e.g. product-manuals")
                with gr.Row():
                    chunk_size = gr.Number(
                        200, label="Chunk size", precision=0, minimum=16, info="tokens per chunk"
                    )
                    overlap = gr.Number(40, label="Overlap", precision=0, minimum=0, info="tokens repeated")
                    index_type = gr.Dropdown(
                        list(INDEX_TYPES),
                        value="auto",
                        label="Index type",
                        info="auto: exact search, HNSW when large",
                    )
                create = gr.Button("Create")
        with gr.Column(scale=3):
            files = gr.File(
                label="Documents", file_count="multiple", file_types=list(UPLOAD_SUFFIXES), height=140
            )
            lines = gr.Checkbox(False, label="Each line of a .txt file is its own document")
            add = gr.Button("Add to knowledge base", variant="primary")
    status = gr.Markdown(NO_INDEX if not names else "")
    with gr.Row():
        with gr.Column(scale=2):
            docs = gr.Dataframe(headers=DOC_COLUMNS, label="Documents", interactive=False, max_height=320)
            with gr.Row():
                source = gr.Dropdown([], label="Document to remove", scale=3, allow_custom_value=True)
                remove = gr.Button("Remove", variant="stop", scale=1)
        with gr.Column(scale=3):
            query = gr.Textbox(label="Test query", placeholder="Ask something the documents answer")
            with gr.Row():
                k = gr.Slider(1, 20, 5, step=1, label="Chunks (k)")
                hybrid = gr.Checkbox(False, label="Hybrid (BM25 + dense)")
            search = gr.Button("Search")
            hits = gr.Dataframe(
                headers=HIT_COLUMNS, label="Retrieved chunks", wrap=True, interactive=False, max_height=360
            )

    status_outputs = [status, docs, source, timer]
    status_fn = bind(index_status, services)
    create.click(
        bind(create_index, services),
        [new_name, chunk_size, overlap, index_type],
        [index, status],
        api_name="index_create",
    )
    add.click(
        bind(add_documents, services), [index, files, lines], [status, timer, job_id], api_name="index_add"
    )
    timer.tick(status_fn, index, status_outputs, api_name="index_poll", api_visibility="private")
    index.change(status_fn, index, status_outputs, api_name="index_status")
    remove.click(
        bind(remove_document, services), [index, source], [status, docs, source], api_name="index_remove"
    )
    search.click(bind(test_query, services), [index, query, k, hybrid], hits, api_name="index_query")
    query.submit(bind(test_query, services), [index, query, k, hybrid], hits, api_visibility="private")
    on_load(status_fn, index, status_outputs)
    refresh_on_focus(index, services.index_names)
