"""Blob store on a local directory (URL ``file:///abs/dir``), for the embedded setup.

Layout under the root directory::

    <root>/<key>                      committed objects
    <root>/.tmp/<random>              writes in progress (streamed, never in memory)
    <root>/.meta/<hh>/<sha256(key)>.<inode>.json
                                      content type and custom metadata of one version

Commit is ``fsync`` + ``os.replace``, so readers see the old or the new object, never a
partial one. Metadata lives in a sidecar named after the *inode* of the data file it
describes: the writer knows the inode of its temp file, and ``os.replace`` keeps it, so
the sidecar is written (atomically) before the data becomes visible and a reader always
finds the metadata of exactly the version it sees, even while another writer replaces
the object. Sidecars of replaced versions are removed after the replace. Sidecars are
named by a hash of the key so that a key whose last segment is near the file-name limit
still fits, and so that ``.meta`` never mirrors the key hierarchy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat as stat_mod
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from rvcloud.backends.blob.base import BlobInfo, BlobNotFound, BlobStore, BlobWriter
from rvcloud.metadata.archive_path import InvalidKey, validate_key

_TMP = ".tmp"
_META = ".meta"
_RESERVED = (_TMP, _META)
_NAME_MAX = 255  # bytes in one file name on common filesystems; keys are ASCII
_COPY_BUFFER = 4 << 20  # compose copies in 4 MiB pieces (a few syscalls per part)
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def _fsync_dir(path: Path) -> None:
    # Makes a rename durable; some filesystems refuse O_RDONLY fsync on directories.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _FileBlobWriter(BlobWriter):
    def __init__(
        self, store: FileBlobStore, key: str, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        self.key = key
        self._store = store
        self._content_type = content_type
        self._metadata = dict(metadata)
        fd, tmp = tempfile.mkstemp(prefix="w-", dir=store._tmp_dir)
        self._tmp: Path | None = Path(tmp)
        self._f: BinaryIO | None = os.fdopen(fd, "wb")
        self._size = 0
        self._info: BlobInfo | None = None

    def write(self, data: bytes | memoryview) -> None:
        if self._f is None:
            raise ValueError(f"writer for {self.key!r} is already committed or aborted")
        self._f.write(data)
        self._size += len(data) if isinstance(data, bytes) else data.nbytes

    def commit(self) -> BlobInfo:
        if self._info is not None:
            return self._info
        if self._f is None or self._tmp is None:
            raise ValueError(f"writer for {self.key!r} was aborted")
        f, tmp = self._f, self._tmp
        try:
            f.flush()
            os.fsync(f.fileno())
            ino = os.fstat(f.fileno()).st_ino
            f.close()
            self._f = None
            dest = self._store._path(self.key)
            dest.parent.mkdir(parents=True, exist_ok=True)
            # Sidecar first (see module docstring): it is only found via the new inode.
            self._store._write_meta(self.key, ino, self._content_type, self._metadata)
            try:
                old_ino: int | None = os.stat(dest).st_ino
            except FileNotFoundError:
                old_ino = None
            os.replace(tmp, dest)
            self._tmp = None
            _fsync_dir(dest.parent)
        except BaseException:
            self.abort()
            raise
        if old_ino is not None and old_ino != ino:
            self._store._remove_meta(self.key, old_ino)
        self._info = BlobInfo(
            key=self.key,
            size=self._size,
            uri=self._store.uri(self.key),
            content_type=self._content_type,
            metadata=dict(self._metadata),
            updated=time.time(),
        )
        return self._info

    def abort(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
            self._f = None
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            self._tmp = None

    def __del__(self) -> None:
        # A writer dropped without commit must not leave its temp file behind.
        with contextlib.suppress(Exception):
            self.abort()


class FileBlobStore(BlobStore):
    """Objects as files under ``root``; see the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._tmp_dir = self.root / _TMP
        self._meta_dir = self.root / _META
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        self._meta_dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.root)!r})"

    # ---- paths ------------------------------------------------------------------

    def _check(self, key: str) -> str:
        validate_key(key)
        if key.split("/", 1)[0] in _RESERVED:
            raise InvalidKey(f"key {key!r} uses a directory reserved by the file blob store")
        if any(len(seg) > _NAME_MAX for seg in key.split("/")):
            raise InvalidKey(f"key {key!r} has a segment longer than {_NAME_MAX} bytes (a file name)")
        return key

    def _path(self, key: str) -> Path:
        # Only validated keys get here; validate_key rules out '..', '.', absolute
        # paths and backslashes, so the result stays under root.
        return self.root / key

    def _meta_path(self, key: str, ino: int) -> Path:
        h = hashlib.sha256(key.encode()).hexdigest()
        return self._meta_dir / h[:2] / f"{h}.{ino}.json"

    def _write_meta(self, key: str, ino: int, content_type: str, metadata: Mapping[str, str]) -> None:
        path = self._meta_path(key, ino)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"content_type": content_type, "metadata": dict(metadata)}).encode()
        fd, tmp = tempfile.mkstemp(prefix="m-", dir=self._tmp_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _remove_meta(self, key: str, ino: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._meta_path(key, ino).unlink()

    def _read_meta(self, key: str, ino: int) -> tuple[str, dict[str, str]]:
        try:
            d: dict[str, Any] = json.loads(self._meta_path(key, ino).read_bytes())
        except FileNotFoundError:
            # An object placed in the directory by hand has no sidecar.
            return DEFAULT_CONTENT_TYPE, {}
        return str(d.get("content_type") or DEFAULT_CONTENT_TYPE), dict(d.get("metadata") or {})

    def _info(self, key: str, st: os.stat_result) -> BlobInfo:
        content_type, metadata = self._read_meta(key, st.st_ino)
        return BlobInfo(key, st.st_size, self.uri(key), content_type, metadata, st.st_mtime)

    # ---- interface --------------------------------------------------------------

    def writer(
        self,
        key: str,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> BlobWriter:
        self._check(key)
        md = dict(metadata or {})
        for k, v in md.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must map str to str, got {k!r}: {v!r}")
        return _FileBlobWriter(self, key, content_type, md)

    def compose(
        self,
        key: str,
        sources: Sequence[str],
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> BlobInfo:
        """Concatenate by copying into an ordinary writer: the result commits like any write.

        A local disk has no server-side compose; copying costs one more write of the
        data, which is what the atomic temp-file-and-rename commit needs anyway.
        """
        if not sources:
            raise ValueError(f"compose of {key!r}: no sources")
        for src in sources:
            self._check(src)
        with self.writer(key, content_type, metadata) as w:
            for src in sources:
                with self.open(src) as f:
                    shutil.copyfileobj(f, w, _COPY_BUFFER)
            return w.commit()

    def open(self, key: str) -> BinaryIO:
        path = self._path(self._check(key))
        try:
            f = open(path, "rb")  # noqa: SIM115 -- the caller owns the stream
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise BlobNotFound(key) from e
        if not stat_mod.S_ISREG(os.fstat(f.fileno()).st_mode):
            f.close()
            raise BlobNotFound(key)
        return f

    def stat(self, key: str) -> BlobInfo:
        path = self._path(self._check(key))
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise BlobNotFound(key) from e
        if not stat_mod.S_ISREG(st.st_mode):
            raise BlobNotFound(key)
        return self._info(key, st)

    def delete(self, key: str) -> None:
        path = self._path(self._check(key))
        try:
            st = os.stat(path)
            if not stat_mod.S_ISREG(st.st_mode):
                return
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        self._remove_meta(key, st.st_ino)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        if prefix:
            # A prefix may end in '/' or stop mid-segment; it is valid if some key
            # could start with it.
            validate_key(prefix + "x")
        # Walk only the deepest directory the prefix names, then sort: a directory
        # walk does not give byte order ('a.b' < 'a/b').
        base_rel = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.root / base_rel if base_rel else self.root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            rel = os.path.relpath(dirpath, self.root)
            if rel == ".":
                dirnames[:] = [d for d in dirnames if d not in _RESERVED]
                rel_prefix = ""
            else:
                rel_prefix = rel.replace(os.sep, "/") + "/"
            for name in filenames:
                key = rel_prefix + name
                if key.startswith(prefix):
                    try:
                        validate_key(key)
                    except InvalidKey:
                        continue  # a stray file that no writer could have made
                    keys.append(key)
        for key in sorted(keys):
            try:
                st = os.stat(self._path(key))
            except FileNotFoundError:
                continue  # deleted while listing
            if stat_mod.S_ISREG(st.st_mode):
                yield self._info(key, st)

    def uri(self, key: str) -> str:
        return "file://" + str(self._path(self._check(key)))

    def key_for_uri(self, uri: str) -> str:
        prefix = "file://" + str(self.root) + "/"
        if not uri.startswith(prefix):
            raise ValueError(f"URI {uri!r} is not in the blob store at {self.root}")
        return self._check(uri[len(prefix) :])
