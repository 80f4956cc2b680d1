"""The git working copy: fetch one branch with dulwich and bring the month files on disk
to exactly that commit (a hard reset: files changed upstream are rewritten, files gone
upstream are deleted, a force-push is followed like any other move of the branch).

Pure Python on purpose: dulwich needs no ``git`` binary in the container and no shell, so
a URL from the config is never part of a command line, and its errors are Python
exceptions we can redact. Everything here is blocking; callers run it in a thread
(``asyncio.to_thread``) so that fetching never holds up a reply.

Layout under the storage folder (``<storage dir>/source/``)::

    repo.git/   a bare repository: the fetched objects and refs/remotes/origin/<branch>
    tree/       the files of ``content.source.path`` at that commit: what the bot indexes
    lock        held while fetching, so ``briefbot pull`` next to a running bot waits
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import BriefbotError
from bot.logs import redact

MAX_BLOB_BYTES = 64 * 1024 * 1024  # the index refuses bigger month files anyway


class SourceError(BriefbotError):
    """A fetch that failed; the message is one redacted line."""


@dataclass(frozen=True)
class Checkout:
    """What one fetch brought: the commit, and how many files it wrote or deleted."""

    commit: str
    written: int
    deleted: int

    @property
    def changed(self) -> bool:
        return bool(self.written or self.deleted)


def source_dir(storage_path: Path) -> Path:
    """Where the bot keeps its copy: next to the database."""
    return storage_path.parent / "source"


def tree_dir(storage_path: Path) -> Path:
    return source_dir(storage_path) / "tree"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return redact(f"{type(err).__name__}: {text}")[:300]


def fetch(url: str, branch: str, path: str, storage_path: Path) -> Checkout:
    """Fetch ``branch`` from ``url`` and reset the working tree to it. SourceError (never
    showing the URL's credentials) if the remote cannot be read, the branch or the path
    does not exist; the files on disk are then left as they were."""
    folder = source_dir(storage_path)
    with _locked(folder):
        try:
            commit, files = _fetch_files(url, branch, path, folder / "repo.git")
        except SourceError:
            raise
        except Exception as err:  # dulwich raises many kinds; each is one line here
            raise SourceError(f"cannot fetch the content source: {_one_line(err)}") from None
        try:
            written, deleted = _materialize(files, folder / "tree")
        except OSError as err:
            raise SourceError(f"cannot write the working copy: {_one_line(err)}") from None
        return Checkout(commit, written, deleted)


def _fetch_files(url: str, branch: str, path: str, repo_dir: Path) -> tuple[str, dict[str, bytes]]:
    from dulwich.client import get_transport_and_path
    from dulwich.object_store import iter_tree_contents, tree_lookup_path
    from dulwich.objects import Blob, Commit, Tree
    from dulwich.repo import Repo

    repo = Repo(str(repo_dir)) if repo_dir.is_dir() else Repo.init_bare(str(repo_dir), mkdir=True)
    try:
        ref = b"refs/heads/" + branch.encode()
        client, remote_path = get_transport_and_path(url, quiet=True)

        def wants(refs: Mapping[bytes, bytes], depth: int | None = None) -> list[bytes]:
            sha = refs.get(ref)
            if sha is None:
                raise SourceError(f"content.source.branch: the repository has no branch {branch!r}")
            return [] if sha in store else [sha]

        # dulwich's ref and object id types changed across versions: plain bytes here.
        store: Any = repo.object_store
        refs: Any = repo.refs
        fetched: Any = client.fetch(remote_path, repo, determine_wants=wants)  # type: ignore[arg-type]
        sha = fetched.refs.get(ref)
        if sha is None:
            raise SourceError(f"content.source.branch: the repository has no branch {branch!r}")
        # Set, not fast-forwarded: a force-pushed branch is followed as it is now.
        refs[b"refs/remotes/origin/" + branch.encode()] = sha
        commit = repo[sha]
        if not isinstance(commit, Commit):
            raise SourceError(f"content.source.branch: {branch!r} does not point at a commit")
        tree_id = commit.tree
        if path:
            try:
                mode, tree_id = tree_lookup_path(repo.__getitem__, tree_id, path.encode())
            except KeyError:
                raise SourceError(
                    f"content.source.path: no folder {path!r} in {branch!r}"
                ) from None
            if not stat.S_ISDIR(mode):
                raise SourceError(f"content.source.path: {path!r} is not a folder")
        files: dict[str, bytes] = {}
        for entry in iter_tree_contents(repo.object_store, tree_id):
            name = entry.path.decode("utf-8", "replace") if entry.path else ""
            # Regular month files only: no symlinks (they could point outside the copy),
            # no submodules, no names that climb out of the folder.
            if not (entry.mode and stat.S_ISREG(entry.mode) and name.endswith(".md")):
                continue
            if any(part in ("", ".", "..", ".git") for part in name.split("/")):
                continue
            blob = repo.object_store[entry.sha] if entry.sha else None
            if isinstance(blob, Blob) and len(blob.data) <= MAX_BLOB_BYTES:
                files[name] = blob.data
        assert isinstance(repo[tree_id], Tree)
        return sha.decode(), files
    finally:
        repo.close()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _materialize(files: dict[str, bytes], root: Path) -> tuple[int, int]:
    """Make ``root`` hold exactly ``files``: rewrite what differs (atomically, so the index
    never reads half a file), delete the rest. Unchanged files keep their mtime, so the
    incremental sync does not even read them."""
    root.mkdir(parents=True, exist_ok=True)
    written = deleted = 0
    for name, data in files.items():
        target = root / name
        try:
            if (
                target.is_file()
                and not target.is_symlink()
                and _digest(target.read_bytes()) == _digest(data)
            ):
                continue
        except OSError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        written += 1
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for filename in filenames:
            full = Path(dirpath) / filename
            if full.relative_to(root).as_posix() not in files:
                full.unlink()
                deleted += 1
        for dirname in dirnames:
            with contextlib.suppress(OSError):  # not empty: still has files we keep
                (Path(dirpath) / dirname).rmdir()
    return written, deleted
