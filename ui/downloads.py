"""Files handed to the browser for download.

Gradio serves only files under the working directory or the system temp folder (or launch's `allowed_paths`), and
the workspace may be anywhere (`--workspace`, `/data/workspace` on a Space). So a file to download is copied into a
fresh folder under the temp directory first, keeping its name; the workspace copy stays the one of record.
"""

import shutil
import tempfile
from pathlib import Path


def downloadable(path: str | Path, name: str | None = None) -> str:
    """A copy of `path` (named `name`, default its own name) in a new temp folder Gradio can serve."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path.name} is not there any more: build it again")
    folder = Path(tempfile.mkdtemp(prefix="ftrag-download-"))
    return str(shutil.copyfile(path, folder / (name or path.name)))


def temp_file(name: str) -> Path:
    """A path named `name` in a new temp folder (for files built only to be downloaded)."""
    return Path(tempfile.mkdtemp(prefix="ftrag-download-")) / name
