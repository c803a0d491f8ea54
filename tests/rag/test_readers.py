"""Format readers: text with encodings, Markdown, HTML, PDF, DOCX, CSV, JSON Lines, and their bad inputs."""

from __future__ import annotations

import io

import pytest

from rag.config import ReadOptions
from rag.readers import citation, decode_text, read_bytes


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Café crème, naïve façade.".encode(), "Café crème, naïve façade."),
        ("\ufeffCafé crème.".encode(), "Café crème."),
        ("Café crème, naïve façade, déjà vu, très élégant.".encode("cp1252"), "Café crème, naïve façade"),
        ("Grüße aus Köln".encode("utf-16"), "Grüße aus Köln"),
    ],
    ids=["utf8", "utf8-bom", "cp1252", "utf16"],
)
def test_text_encodings_are_detected(data, expected):
    assert decode_text(data).startswith(expected)


def test_text_file_is_one_document_by_default():
    docs = read_bytes("notes.txt", b"first line\nsecond line\n")
    assert [(d.source, d.text, d.record) for d in docs] == [("notes.txt", "first line\nsecond line", None)]


def test_lines_as_documents_numbers_lines_and_skips_blank_ones():
    docs = read_bytes("wiki.txt", b"Alpha article.\n\nBeta article.\n", ReadOptions(lines_as_documents=True))
    assert [(d.text, d.record) for d in docs] == [("Alpha article.", "line 1"), ("Beta article.", "line 3")]


def test_markdown_sections_keep_their_heading():
    text = b"Intro text.\n\n# Setup\n\nInstall it.\n\n```\n# not a heading\n```\n\n## Usage ##\n\nRun it.\n"
    docs = read_bytes("guide.md", text)
    assert [d.heading for d in docs] == [None, "Setup", "Usage"]
    assert "# not a heading" in docs[1].text
    assert docs[2].text.startswith("## Usage")


def test_html_keeps_main_text_and_headings_not_markup():
    html = b"""<html><head><title>t</title><style>p {color: red}</style><script>var x = 'secret';</script></head>
    <body><nav>Home | About</nav><main><h1>Tides</h1><p>The <b>moon</b> pulls the oceans.</p>
    <h2>Spring tides</h2><p>They happen at new and full moon.</p><ul><li>High</li><li>Low</li></ul></main>
    <footer>Copyright</footer></body></html>"""
    docs = read_bytes("tides.html", html)
    assert [d.heading for d in docs] == ["Tides", "Spring tides"]
    assert docs[0].text == "Tides\n\nThe moon pulls the oceans."
    joined = " ".join(d.text for d in docs)
    for absent in ("secret", "color", "Home", "Copyright", "<"):
        assert absent not in joined
    assert "High" in docs[1].text and "Low" in docs[1].text


def test_pdf_pages_are_numbered(make_pdf):
    docs = read_bytes("atlas.pdf", make_pdf(["Volcanoes of Iceland", "", "Glaciers of Norway"]))
    assert [(d.page, d.text) for d in docs] == [(1, "Volcanoes of Iceland"), (3, "Glaciers of Norway")]


def test_docx_headings_paragraphs_and_tables(make_docx):
    data = make_docx(
        [
            ("paragraph", "Preface."),
            ("heading", "Prices"),
            ("paragraph", "See the table."),
            ("table", "tea|2;cake|3"),
        ]
    )
    docs = read_bytes("menu.docx", data)
    assert [d.heading for d in docs] == [None, "Prices"]
    assert docs[1].text == "Prices\n\nSee the table.\n\ntea | 2\ncake | 3"


def test_csv_rows_become_records_from_chosen_columns():
    data = b"id;question;answer\n1;What is H2O?;Water\n2;;\n3;Capital of France?;Paris\n"
    docs = read_bytes("faq.csv", data, ReadOptions(text_columns=("question", "answer")))
    assert [(d.record, d.text) for d in docs] == [
        ("row 1", "question: What is H2O?\nanswer: Water"),
        ("row 3", "question: Capital of France?\nanswer: Paris"),
    ]
    single = read_bytes("faq.csv", data, ReadOptions(text_columns=("answer",)))
    assert [d.text for d in single] == ["Water", "Paris"]


def test_jsonl_uses_text_columns_by_default():
    data = b'{"title": "Moon", "views": 3, "body": "It orbits Earth."}\n\n{"title": "Sun", "views": 9}\n'
    docs = read_bytes("pages.jsonl", data)
    assert [d.text for d in docs] == ["title: Moon\nbody: It orbits Earth.", "title: Sun"]


def test_citation_names_source_page_and_record():
    assert citation("a.pdf", 2) == "a.pdf, page 2"
    assert citation("w.txt", None, "line 3") == "w.txt, line 3"
    assert citation("n.md") == "n.md"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", r"is empty \(0 bytes\)"),
        ("blank.md", b"  \n\t\n", "is empty"),
        ("image.txt", bytes(range(256)) * 8, "binary file"),
        ("noise.txt", bytes([0x1B, 0x07, 0x41, 0x02]) * 200, "binary file"),
        ("word.docx", b"this is plain text, not a zip", r"not a valid \.docx"),
        (
            "only-scripts.html",
            b"<html><script>alert(1)</script><style>b{}</style></html>",
            "no text outside scripts",
        ),
        ("truncated.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "could not be read as a PDF"),
        ("tool.exe", b"MZ\x90\x00", "unsupported file type '.exe'"),
        ("rows.jsonl", b'{"a": "x"}\nnot json\n', "line 2 is not valid JSON"),
        ("rows.jsonl", b'["a", "b"]\n', "line 1 is not a JSON object"),
    ],
)
def test_bad_inputs_raise_one_clear_message(name, data, message):
    with pytest.raises(ValueError, match=message):
        read_bytes(name, data)


def test_csv_missing_column_names_the_available_ones():
    with pytest.raises(ValueError, match="has no column 'body'; its columns are q, a"):
        read_bytes("faq.csv", b"q,a\nx,y\n", ReadOptions(text_columns=("body",)))


def test_truncated_real_pdf_is_reported(make_pdf):
    data = make_pdf(["Some text on a page"])
    with pytest.raises(ValueError, match="could not be read as a PDF"):
        read_bytes("cut.pdf", data[: len(data) // 2])


def test_encrypted_pdf_is_reported(make_pdf):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(make_pdf(["Secret plans"]))).pages:
        writer.add_page(page)
    writer.encrypt("hunter2", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(ValueError, match="is encrypted"):
        read_bytes("locked.pdf", out.getvalue())


def test_pdf_without_text_asks_for_ocr(make_pdf):
    with pytest.raises(ValueError, match="no extractable text"):
        read_bytes("scan.pdf", make_pdf(["", ""]))
