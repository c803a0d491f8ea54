"""Uploads -> files to read: expands folders and .zip archives, applies size limits, names each source.

Nothing is ever extracted to disk: archive members are read into memory, so a member named `../x` cannot
write outside the index (such an archive is refused as a whole anyway), and the uncompressed total is
checked against `ReadOptions.max_archive_mb` before anything is read (zip bombs).

    >>> from rag.ingest import collect
    >>> files, errors = collect(["docs/", "notes.pdf", "site.zip"])   # doctest: +SKIP
    >>> files[0].source, files[0].load()[:10]                          # doctest: +SKIP

Source names: a file given directly is named by its file name, a folder member `folder/relative/path`, an
archive member `archive.zip/inner/path`.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rag.config import ReadOptions
from rag.readers import SUPPORTED_SUFFIXES, Document, read_bytes

MB = 1024 * 1024


@dataclass(frozen=True)
class PendingFile:
    """One file of an upload, not read yet: `load()` returns its bytes (size limit already applied)."""

    source: str
    load: Callable[[], bytes]


def collect(
    paths: Iterable[str | Path], options: ReadOptions | None = None
) -> tuple[list[PendingFile], list[str]]:
    """Expand files, folders and .zip archives into pending files and error messages (one per bad file).

    The same source name given twice keeps the first and reports the second.
    """
    options = options or ReadOptions()
    files: list[PendingFile] = []
    errors: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            errors.append(f"{path}: no such file or folder")
        elif path.is_dir():
            _collect_folder(path, options, files, errors)
        elif path.suffix.lower() == ".zip":
            _collect_zip(path, options, files, errors)
        else:
            _add(files, errors, _file(path, path.name, options))
    return _unique(files, errors)


def read_file(pending: PendingFile, options: ReadOptions | None = None) -> tuple[list[Document], str]:
    """Read one pending file -> (documents, content hash). Raises ValueError naming the file."""
    options = options or ReadOptions()
    try:
        data = pending.load()
        docs = read_bytes(pending.source, data, options)
    except ValueError as exc:
        raise ValueError(f"{pending.source}: {exc}") from exc
    except Exception as exc:  # a library choking on a malformed file must not stop the other files
        raise ValueError(f"{pending.source}: could not be read ({type(exc).__name__}: {exc})") from exc
    digest = hashlib.sha256(options.fingerprint().encode() + b"\0" + data).hexdigest()
    return docs, digest


def _unique(files: list[PendingFile], errors: list[str]) -> tuple[list[PendingFile], list[str]]:
    seen: set[str] = set()
    unique = []
    for pending in files:
        if pending.source in seen:
            errors.append(f"{pending.source}: given twice in this upload; only the first copy was read")
            continue
        seen.add(pending.source)
        unique.append(pending)
    return unique, errors


def _add(files: list[PendingFile], errors: list[str], item: PendingFile | str) -> None:
    (errors if isinstance(item, str) else files).append(item)


def _hidden(parts: Iterable[str]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _unsupported(source: str) -> str | None:
    suffix = PurePosixPath(source).suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return None
    if suffix == ".zip":
        return f"{source}: archives inside archives or folders are not read; unpack it and upload its files"
    supported = ", ".join(SUPPORTED_SUFFIXES)
    return f"{source}: unsupported file type {suffix or '(no extension)'!r}; supported: {supported}, .zip"


def _file(path: Path, source: str, options: ReadOptions) -> PendingFile | str:
    problem = _unsupported(source)
    if problem:
        return problem
    size = path.stat().st_size
    if size > options.max_file_mb * MB:
        return f"{source}: is {size / MB:.1f} MB, above the {options.max_file_mb:g} MB limit (max_file_mb)"
    return PendingFile(source, path.read_bytes)


def _collect_folder(folder: Path, options: ReadOptions, files: list[PendingFile], errors: list[str]) -> None:
    members = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p.relative_to(folder).parts))
    if not members:
        errors.append(f"{folder.name}/: the folder holds no files")
    for path in members:
        source = f"{folder.name}/{path.relative_to(folder).as_posix()}"
        _add(files, errors, _file(path, source, options))


def _unsafe_member(name: str) -> bool:
    posix = PurePosixPath(name.replace("\\", "/"))
    return posix.is_absolute() or ".." in posix.parts or (len(name) > 1 and name[1] == ":")


def _collect_zip(path: Path, options: ReadOptions, files: list[PendingFile], errors: list[str]) -> None:
    name = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        errors.append(f"{name}: is not a readable .zip archive ({exc})")
        return
    refusal = _zip_refusal(name, infos, options)
    if refusal:
        errors.append(refusal)
        return
    for info in infos:
        if _hidden(PurePosixPath(info.filename).parts):
            continue
        source = f"{name}/{info.filename}"
        problem = _unsupported(source)
        if problem:
            errors.append(problem)
        elif info.file_size > options.max_file_mb * MB:
            errors.append(
                f"{source}: unpacks to {info.file_size / MB:.1f} MB, above the {options.max_file_mb:g} MB limit"
            )
        else:
            files.append(PendingFile(source, _member_loader(path, info)))


def _zip_refusal(name: str, infos: list[zipfile.ZipInfo], options: ReadOptions) -> str | None:
    """Why the whole archive is refused (unsafe paths, too many files, too large unpacked), or None."""
    unsafe = [i.filename for i in infos if _unsafe_member(i.filename)]
    if unsafe:
        return f"{name}: refused, member {unsafe[0]!r} points outside the archive (zip slip); nothing was read from it"
    if len(infos) > options.max_archive_files:
        return f"{name}: refused, {len(infos)} files is above the {options.max_archive_files} limit (max_archive_files)"
    total = sum(i.file_size for i in infos)
    if total > options.max_archive_mb * MB:
        return (
            f"{name}: refused, it would unpack to {total / MB:.1f} MB, above the {options.max_archive_mb:g} MB "
            "limit (a zip bomb?); split it or raise max_archive_mb"
        )
    return None


def _member_loader(path: Path, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def load() -> bytes:
        # zipfile stops at the size the header declares (already checked against the limits) and checks the
        # CRC, so a header that lies about the size cannot inflate more than that.
        try:
            with zipfile.ZipFile(path) as archive:
                return archive.read(info)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f"is damaged inside the archive ({exc})") from exc

    return load
