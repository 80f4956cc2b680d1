"""A real git "upstream" in a temp folder for tests and benchmarks: a bare repository that
commits are written into with dulwich (objects and refs, exactly what a push leaves), so
the tests need neither the git binary nor the network."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any, cast

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

BRANCH = b"refs/heads/main"


class Upstream:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = Repo.init_bare(str(path), mkdir=True)
        self.files: dict[str, str] = {}
        self.head: bytes | None = None

    @property
    def url(self) -> str:
        return str(self.path)

    def _tree(self, files: dict[str, bytes]) -> bytes:
        """Nested trees for ``{"docs/2025/x.md": data}``; returns the root tree id."""
        here: dict[str, bytes] = {}
        sub: dict[str, dict[str, bytes]] = {}
        for name, data in files.items():
            first, _, rest = name.partition("/")
            if rest:
                sub.setdefault(first, {})[rest] = data
            else:
                here[first] = data
        tree = Tree()
        for name, data in here.items():
            blob = Blob.from_string(data)
            self.repo.object_store.add_object(blob)
            tree.add(name.encode(), 0o100644, blob.id)
        for name, inner in sub.items():
            tree.add(name.encode(), 0o040000, cast(Any, self._tree(inner)))
        self.repo.object_store.add_object(tree)
        return tree.id

    def push(
        self, files: dict[str, str | None], message: str = "update", *, force: bool = False
    ) -> str:
        """Commit ``files`` (text, or None to delete) on top of the branch and move it
        there; ``force``: a commit with no parent and only these files (a force-push)."""
        state = {} if force else dict(self.files)
        for name, text in files.items():
            if text is None:
                state.pop(name, None)
            else:
                state[name] = textwrap.dedent(text).lstrip("\n")
        commit = Commit()
        commit.tree = self._tree({k: v.encode() for k, v in state.items()})
        commit.parents = [] if force or self.head is None else [cast(Any, self.head)]
        commit.author = commit.committer = b"Editor <editor@example.com>"
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = message.encode()
        self.repo.object_store.add_object(commit)
        refs: Any = self.repo.refs
        refs[BRANCH] = commit.id
        self.files, self.head = state, commit.id
        return commit.id.decode()


def month(*issues: str) -> str:
    """A month file from issue blocks."""
    return "\n".join(textwrap.dedent(i).strip() + "\n" for i in issues)


def issue(date: str, *items: str) -> str:
    """``## 2025.03.01`` with its title line and numbered items (given as texts)."""
    y, m, d = date.split(".")
    lines = [f"## {date}", "", f"{y}年{m}月{d}日 💡行业快讯", ""]
    lines += [f"{n}. {text}" for n, text in enumerate(items, 1)]
    return "\n".join(lines)
