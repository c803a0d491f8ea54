"""Format readers: the bytes of one file -> `Document`s (text plus source, page, heading, record).

Each reader raises `ValueError` with a short reason when a file cannot be read ("is empty", "is encrypted");
`rag.ingest` prefixes the file name and carries on with the other files. PDF, HTML and DOCX libraries are
imported inside their readers.

    >>> from rag.readers import read_bytes
    >>> read_bytes("notes.md", b"# Intro\\nHello.")[0].heading
    'Intro'
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

from rag.config import ReadOptions

TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED_SUFFIXES = (*TEXT_SUFFIXES, *MARKDOWN_SUFFIXES, *HTML_SUFFIXES, ".pdf", ".docx", ".csv", ".jsonl")


@dataclass(frozen=True)
class Document:
    """A piece of text with where it came from.

    `source` is the file name (the unit that is added, replaced and removed); `page` is set for PDFs,
    `heading` for sections of Markdown, HTML and DOCX files, `record` for lines and rows ("line 3", "row 7").
    """

    source: str
    text: str
    page: int | None = None
    heading: str | None = None
    record: str | None = None


def citation(source: str, page: int | None = None, record: str | None = None) -> str:
    """The label a reader can look up: "report.pdf, page 2", "wiki_demo.txt, line 3", "notes.md"."""
    parts = [source]
    if page is not None:
        parts.append(f"page {page}")
    if record:
        parts.append(record)
    return ", ".join(parts)


def read_bytes(source: str, data: bytes, options: ReadOptions | None = None) -> list[Document]:
    """Read one file's bytes by its extension. Raises ValueError (without the file name) if it cannot."""
    options = options or ReadOptions()
    suffix = PurePosixPath(source).suffix.lower()
    if not data:
        raise ValueError("is empty (0 bytes)")
    if suffix in TEXT_SUFFIXES:
        return _read_text(source, decode_text(data), options)
    if suffix in MARKDOWN_SUFFIXES:
        return _sections(source, _markdown_sections(decode_text(data)))
    if suffix in HTML_SUFFIXES:
        return _read_html(source, data)
    if suffix == ".pdf":
        return _read_pdf(source, data)
    if suffix == ".docx":
        return _read_docx(source, data)
    if suffix == ".csv":
        return _read_csv(source, decode_text(data), options)
    if suffix == ".jsonl":
        return _read_jsonl(source, decode_text(data), options)
    raise ValueError(
        f"has an unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
    )


# -- plain text ------------------------------------------------------------------------------------------
def decode_text(data: bytes) -> str:
    """Bytes -> text: UTF-8 (with or without BOM), UTF-16 with BOM, else the encoding charset-normalizer finds.

    Raises ValueError for empty and binary content.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    elif b"\x00" in data[:8192]:
        raise ValueError(
            "looks like a binary file, not text (it contains NUL bytes); upload the original text"
        )
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = _guess_decode(data)
    if not text.strip():
        raise ValueError("is empty (only whitespace)")
    controls = sum(1 for ch in text[:20000] if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    if controls > 0.02 * min(len(text), 20000):
        raise ValueError(
            "looks like a binary file, not text (many control characters); upload the original text"
        )
    return text


def _guess_decode(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise ValueError(
            "looks like a binary file, not text (no text encoding fits); upload the original text"
        )
    # On short texts several single-byte code pages fit about equally well; Windows-1252 is by far the most
    # common legacy encoding (browsers read latin-1 as it too), so it wins a near tie.
    least_chaos = min(m.chaos for m in matches)
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= least_chaos + 0.05:
            return str(match)
    return str(from_bytes(data).best())


def _read_text(source: str, text: str, options: ReadOptions) -> list[Document]:
    if not options.lines_as_documents:
        return [Document(source, text.strip())]
    return [
        Document(source, line.strip(), record=f"line {number}")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def _sections(source: str, sections: list[tuple[str | None, str]]) -> list[Document]:
    docs = [Document(source, body.strip(), heading=heading) for heading, body in sections if body.strip()]
    if not docs:
        raise ValueError("has no text")
    return docs


# -- Markdown --------------------------------------------------------------------------------------------
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$")


def _markdown_sections(text: str) -> list[tuple[str | None, str]]:
    """Split at ATX headings (outside code fences); each section keeps its heading line as its first line."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.match(line)
        if match:
            sections.append((match.group(2).strip(), []))
        sections[-1][1].append(line)
    return [(heading, "\n".join(lines)) for heading, lines in sections]


# -- HTML ------------------------------------------------------------------------------------------------
_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "iframe",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
)
_BLOCK_TAGS = (
    "p",
    "div",
    "li",
    "tr",
    "pre",
    "blockquote",
    "section",
    "article",
    "table",
    "ul",
    "ol",
    "dd",
    "dt",
)
_HEADING_MARK = "\ue000"  # a private-use character: never in real text, not whitespace


def _read_html(source: str, data: bytes) -> list[Document]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    for br in root.find_all("br"):
        br.replace_with("\n")
    for heading in root.find_all(re.compile(r"^h[1-6]$")):
        heading.replace_with(f"\n\n{_HEADING_MARK}{heading.get_text(' ', strip=True)}\n\n")
    for block in root.find_all(_BLOCK_TAGS):
        block.insert_after("\n\n")
    text = _tidy(root.get_text())
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.split("\n"):
        if line.startswith(_HEADING_MARK):
            title = line[1:].strip()
            sections.append((title, [title]))
        else:
            sections[-1][1].append(line)
    docs = [(heading, _tidy("\n".join(lines))) for heading, lines in sections]
    if not any(body for _, body in docs):
        raise ValueError("has no text outside scripts and markup")
    return _sections(source, docs)


def _tidy(text: str) -> str:
    """Collapse spaces inside lines and runs of blank lines; paragraphs end up separated by one blank line."""
    lines = [re.sub(r"[ \t\f\v\r\xa0]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# -- PDF -------------------------------------------------------------------------------------------------
def _read_pdf(source: str, data: bytes) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("is encrypted (password-protected); remove the password and upload it again")
        pages = [(number, page.extract_text() or "") for number, page in enumerate(reader.pages, start=1)]
    except ValueError:
        raise
    except (PyPdfError, OSError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"could not be read as a PDF (truncated or damaged? {type(exc).__name__}: {exc})"
        ) from exc
    docs = [Document(source, _tidy(text), page=number) for number, text in pages if text.strip()]
    if not docs:
        raise ValueError("has no extractable text (scanned images?); run OCR on it first")
    return docs


# -- DOCX ------------------------------------------------------------------------------------------------
def _read_docx(source: str, data: bytes) -> list[Document]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError) as exc:
        raise ValueError("is not a valid .docx (not a Word zip package); save it again as .docx") from exc
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for item in document.iter_inner_content():
        if hasattr(item, "rows"):
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in item.rows]
            sections[-1][1].append("\n".join(rows))
            continue
        style = (item.style.name if item.style is not None else "") or ""
        if style.startswith(("Heading", "Title")) and item.text.strip():
            sections.append((item.text.strip(), []))
        sections[-1][1].append(item.text)
    return _sections(source, [(heading, _tidy("\n\n".join(parts))) for heading, parts in sections])


# -- records: CSV and JSON Lines -------------------------------------------------------------------------
def _record_text(row: dict, columns: tuple[str, ...]) -> str:
    values = [(c, _as_text(row.get(c))) for c in columns]
    values = [(c, v) for c, v in values if v]
    if len(columns) == 1:
        return values[0][1] if values else ""
    return "\n".join(f"{c}: {v}" for c, v in values)


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _pick_columns(available: list[str], options: ReadOptions, default: list[str]) -> tuple[str, ...]:
    if options.text_columns is None:
        if not default:
            raise ValueError("has no text columns")
        return tuple(default)
    missing = [c for c in options.text_columns if c not in available]
    if missing:
        raise ValueError(
            f"has no column {', '.join(map(repr, missing))}; its columns are {', '.join(available)}"
        )
    return options.text_columns


def _records(source: str, rows: list[dict], columns: tuple[str, ...]) -> list[Document]:
    docs = []
    for number, row in enumerate(rows, start=1):
        text = _record_text(row, columns)
        if text:
            docs.append(Document(source, text, record=f"row {number}"))
    if not docs:
        raise ValueError(f"has no text in column(s) {', '.join(columns)}")
    return docs


def _read_csv(source: str, text: str, options: ReadOptions) -> list[Document]:
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ValueError(f"is not valid CSV near line {reader.line_num}: {exc}") from exc
    header = [h for h in (reader.fieldnames or []) if h]
    if not header:
        raise ValueError("has no header row; the first line must name the columns")
    return _records(source, rows, _pick_columns(header, options, header))


def _read_jsonl(source: str, text: str, options: ReadOptions) -> list[Document]:
    rows: list[dict] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number} is not valid JSON ({exc.msg}); fix or remove that line") from exc
        if not isinstance(row, dict):
            raise ValueError(f"line {number} is not a JSON object; each line must be one record {{...}}")
        rows.append(row)
    available = list(dict.fromkeys(key for row in rows for key in row))
    text_keys = [k for k in available if any(isinstance(row.get(k), str) for row in rows)]
    return _records(source, rows, _pick_columns(available, options, text_keys))
