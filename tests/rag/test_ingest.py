"""Uploads -> pending files: folders, .zip archives, limits, zip slip, zip bombs, duplicates."""

from __future__ import annotations

import zipfile

import pytest

from rag.config import ReadOptions
from rag.ingest import collect, read_file


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_folder_members_are_named_by_relative_path_and_hidden_files_skipped(tmp_path):
    folder = tmp_path / "manuals"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.md").write_text("# B\nbeta")
    (folder / ".secret.txt").write_text("hidden")
    files, errors = collect([folder])
    assert [f.source for f in files] == ["manuals/a.txt", "manuals/sub/b.md"]
    assert errors == []
    assert files[1].load() == b"# B\nbeta"


def test_zip_members_are_read_in_memory(tmp_path):
    archive = _zip(
        tmp_path / "site.zip", {"docs/a.txt": b"alpha", "__MACOSX/._a.txt": b"junk", "b.html": b"<p>b</p>"}
    )
    files, errors = collect([archive])
    assert [f.source for f in files] == ["site.zip/docs/a.txt", "site.zip/b.html"]
    assert errors == []
    docs, digest = read_file(files[0])
    assert docs[0].text == "alpha" and len(digest) == 64


@pytest.mark.parametrize("evil", ["../evil.txt", "docs/../../evil.txt", "/etc/evil.txt", "C:/evil.txt"])
def test_zip_slip_refuses_the_archive_and_writes_nothing(tmp_path, evil):
    upload = tmp_path / "upload"
    upload.mkdir()
    archive = _zip(upload / "bad.zip", {"good.txt": b"fine", evil: b"pwned"})
    files, errors = collect([archive])
    assert files == []
    assert len(errors) == 1 and errors[0].startswith("bad.zip: refused") and "zip slip" in errors[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.zip", "upload"]


def test_zip_bomb_is_refused_before_unpacking(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {f"part{i}.txt": b"0" * (3 * 1024 * 1024) for i in range(2)})
    assert archive.stat().st_size < 100_000
    files, errors = collect([archive], ReadOptions(max_archive_mb=5))
    assert files == []
    assert errors == [
        "bomb.zip: refused, it would unpack to 6.0 MB, above the 5 MB limit (a zip bomb?); split it or raise "
        "max_archive_mb"
    ]


def test_zip_member_that_lies_about_its_size_is_caught(tmp_path):
    archive = _zip(tmp_path / "liar.zip", {"big.txt": b"A" * 100_000})
    raw = bytearray(archive.read_bytes())
    # Patch the declared uncompressed size in the central directory to 10 bytes.
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    files, _ = collect([archive])
    with pytest.raises(ValueError, match=r"liar.zip/big.txt: is damaged inside the archive \(Bad CRC-32"):
        read_file(files[0])


def test_unsupported_nested_missing_and_oversized_files_are_reported(tmp_path):
    archive = _zip(tmp_path / "mixed.zip", {"inner.zip": b"PK", "tool.exe": b"MZ", "ok.txt": b"fine"})
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (2 * 1024 * 1024))
    files, errors = collect([archive, tmp_path / "missing.pdf", big], ReadOptions(max_file_mb=1))
    assert [f.source for f in files] == ["mixed.zip/ok.txt"]
    assert errors[0].startswith("mixed.zip/inner.zip: archives inside archives")
    assert errors[1].startswith("mixed.zip/tool.exe: unsupported file type '.exe'")
    assert errors[2].endswith("missing.pdf: no such file or folder")
    assert errors[3] == "big.txt: is 2.0 MB, above the 1 MB limit (max_file_mb)"


def test_same_source_twice_in_one_upload_keeps_the_first(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "notes.txt").write_text("first")
    (tmp_path / "two" / "notes.txt").write_text("second")
    files, errors = collect([tmp_path / "one" / "notes.txt", tmp_path / "two" / "notes.txt"])
    assert [f.load() for f in files] == [b"first"]
    assert errors == ["notes.txt: given twice in this upload; only the first copy was read"]


def test_read_errors_name_the_file(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    files, _ = collect([tmp_path / "empty.txt"])
    with pytest.raises(ValueError, match=r"^empty.txt: is empty \(0 bytes\)$"):
        read_file(files[0])


def test_hash_depends_on_content_and_read_options(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo")
    files, _ = collect([tmp_path / "a.txt"])
    _, plain = read_file(files[0])
    _, by_line = read_file(files[0], ReadOptions(lines_as_documents=True))
    (tmp_path / "a.txt").write_text("one\nthree")
    _, changed = read_file(files[0])
    assert len({plain, by_line, changed}) == 3
