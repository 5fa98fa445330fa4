"""`lavabench data pull NAME`: fetch a built-in dataset's files into the cache, verified.

Each spec's `source.files` lists {url, sha256, path[, gunzip_to]}; `path` is relative to the
data root. A file already in the cache with the right sha256 is kept. With
LAVABENCH_DATA_MIRROR set (offline machines, CI) files are copied from the mirror instead of
downloaded, and verified the same way. A sha256 mismatch is an error and nothing is kept.
Not on the data path (it does network I/O), so it uses urllib and is only run by the CLI.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lavabench.datasets.spec import DATA_MIRROR_ENV, cache_root
from lavabench.errors import DatasetError

Fetch = Callable[[str, Path], None]


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out)


def pull(
    source: Mapping[str, Any],
    cache_dir: str | None = None,
    fetch: Fetch = _download,
    mirror: str | None = None,
) -> list[Path]:
    """Make every file of `source` present and verified in the cache; returns their paths."""
    root = cache_root(cache_dir)
    mirror = mirror if mirror is not None else os.environ.get(DATA_MIRROR_ENV)
    files = source.get("files") or []
    if not files:
        raise DatasetError("dataset.source.files: empty; nothing to pull")
    out = []
    for entry in files:
        rel, expected, url = str(entry["path"]), str(entry["sha256"]), str(entry["url"])
        dest = root / rel
        if not (dest.exists() and _sha256(dest) == expected):
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".pull-")
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                if mirror:
                    origin = Path(mirror) / rel
                    if not origin.is_file():
                        raise DatasetError(f"{origin}: not in the mirror ({DATA_MIRROR_ENV})")
                    shutil.copyfile(origin, tmp)
                else:
                    fetch(url, tmp)
                got = _sha256(tmp)
                if got != expected:
                    raise DatasetError(
                        f"{rel}: sha256 {got} does not match the spec's {expected} "
                        f"(from {mirror or url}); nothing was kept"
                    )
                tmp.replace(dest)
            finally:
                tmp.unlink(missing_ok=True)
        out.append(dest)
        if entry.get("gunzip_to"):
            target = root / str(entry["gunzip_to"])
            with gzip.open(dest, "rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(target)
    return out
