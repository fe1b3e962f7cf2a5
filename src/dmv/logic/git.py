"""The link to the code repository: commit, branch, remote, dirty state, patches, tags.

Git is used through its command line, never through a library, with settings
that keep a repository's own configuration from running programs or changing
the output dmv parses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dmv._urls import git_url
from dmv.errors import ConflictError, DirtyTreeError, DmvError, GitError, InvalidInput, NotFound
from dmv.logic.fingerprint import _existing_dir, _inside
from dmv.version import Version

__all__ = [
    "BranchWarning",
    "GitInfo",
    "branch_mismatch",
    "check_clean",
    "checkout",
    "create_branch",
    "create_tag",
    "git_identity",
    "git_info",
    "git_patch",
    "strip_credentials",
    "version_branch",
    "version_branches",
    "version_tag",
]

PathArg = str | os.PathLike[str]


# Settings that keep git from running repository-configured programs (fsmonitor),
# paging, colouring, quoting paths or shortening diff prefixes: the output is parsed
# or applied by machines.
_GIT_SAFE_SETTINGS = (
    "core.fsmonitor=false",
    "core.quotePath=false",
    "core.pager=cat",
    "color.ui=false",
    "diff.noprefix=false",
    "diff.mnemonicPrefix=false",
    "advice.detachedHead=false",
)
_GIT_SAFE = ["--literal-pathspecs", *(arg for s in _GIT_SAFE_SETTINGS for arg in ("-c", s))]
# A calling git hook exports these; they would point our commands at its repository.
_GIT_ENV_DROP = frozenset(
    {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX"}
    | {"GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES"}
)


@dataclass(frozen=True, slots=True)
class GitInfo:
    """Where the code of a run stands in git.

    ``changed`` lists every uncommitted change in the repository (paths relative
    to its top; an untracked folder ends in ``/``); ``dirty_paths`` the declared
    code paths among them, as they were declared.
    """

    root: str
    workdir: str
    commit: str | None
    branch: str | None
    remote_url: str | None
    dirty: bool
    changed: tuple[str, ...]
    dirty_paths: tuple[str, ...] = ()

    def dirty_among(self, paths: Iterable[PathArg]) -> tuple[str, ...]:
        """The paths (relative to ``workdir``) that hold an uncommitted change."""
        top = Path(self.root)
        dirty = []
        for path in paths:
            rel = _repo_path(top, Path(self.workdir), path)
            if any(_overlaps(rel, entry.rstrip("/")) for entry in self.changed):
                dirty.append(os.fspath(path))
        return tuple(dirty)

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "branch": self.branch,
            "remote_url": self.remote_url,
            "dirty": self.dirty,
            "dirty_paths": list(self.dirty_paths),
        }


def _overlaps(declared: str, changed: str) -> bool:
    return (
        not declared
        or declared == changed
        or changed.startswith(declared + "/")
        or declared.startswith(changed + "/")
    )


def strip_credentials(url: str) -> str:
    """``url`` without a password or token (the git rule of :func:`dmv._urls.git_url`)."""
    return git_url(url)


def version_tag(version: Version) -> str:
    """The git tag dmv gives a version: ``price-model@1.1.0-0123.efgh``."""
    return version.ref


class BranchWarning(UserWarning):
    """Training on a branch named for another version (``[git] branch_pattern``)."""


def version_branch(version: Version, pattern: str) -> str:
    """The branch ``dmv branch`` gives a version: ``pattern`` filled in
    (``{model}/{x}.{y}.{z}-{data}`` → ``price-model/0.1.0-0123``)."""
    v = version
    return pattern.format(model=v.name, x=v.x, y=v.y, z=v.z, data=v.data, split=v.split)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"({\w+})", pattern)
    group = {"model": r"[a-z][a-z0-9-]*", "data": "[0-9a-z]+", "split": "[0-9a-z]+"}
    out = []
    for part in parts:
        name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
        if name is None:
            out.append(re.escape(part))
        else:
            out.append(f"(?P<{name}>{group.get(name, '0|[1-9][0-9]*')})")
    return re.compile("".join(out))


def branch_mismatch(branch: str | None, version: Version, pattern: str) -> str | None:
    """The version ``branch`` is named for, when it names another one than ``version``.

    X is left out of the comparison: retraining on the branch of release
    ``1.1.0-…`` makes its prerelease ``0.1.0-…`` again, the same code.
    """
    if not branch:
        return None
    m = _pattern_regex(pattern).fullmatch(branch)
    if m is None:
        return None
    named = m.groupdict()
    mine = {"model": version.name, "x": str(version.x), "y": str(version.y)}
    mine |= {"z": str(version.z), "data": version.data, "split": version.split}
    differs = [k for k in named if k != "x" and named[k] != mine[k]]
    return branch if differs else None


def create_branch(root: PathArg, commit: str, name: str) -> str:
    """Create branch ``name`` at ``commit`` (nothing is checked out); the full commit id.

    A branch of that name already at ``commit`` is fine (a repeat is a no-op); one
    pointing elsewhere is never moved.
    """
    top, _ = _require_repo(root)
    sha = _resolve_commit(top, commit)
    ref = f"refs/heads/{name}"
    if name.startswith("-") or _git(top, "check-ref-format", ref, check=False).returncode:
        raise InvalidInput(
            f"{name!r} is not a valid git branch name",
            hint="change [git] branch_pattern in dmv.toml: no spaces, '~', '^', ':', '..'",
        )
    existing = _branch_target(top, ref)
    if existing is None:
        # update-ref with an all-zero old value creates it only if it does not exist.
        created = _git(top, "update-ref", ref, sha, "0" * len(sha), check=False)
        if created.returncode == 0:
            return sha
        existing = _branch_target(top, ref)  # someone else created it meanwhile
        if existing is None:
            raise _git_failure(("update-ref",), created)
    if existing != sha:
        raise ConflictError(
            f"branch {name!r} already points at {existing[:12]}, not {sha[:12]} "
            "(the commit the version was trained from); dmv never moves a branch",
            hint=f"inspect it with 'git log -1 {name}'; rename or delete it yourself "
            f"('git branch -m {name} OTHER') only if it is wrong",
            branch=name,
            commit=existing,
        )
    return sha


def _branch_target(top: Path, ref: str) -> str | None:
    found = _git(top, "rev-parse", "--verify", "--quiet", ref, check=False)
    return os.fsdecode(found.stdout.strip()) if found.returncode == 0 else None


def version_branches(root: PathArg, names: Iterable[str]) -> dict[str, str]:
    """Which of the branch ``names`` exist in the repository holding ``root``: name → commit.

    Empty outside a git repository or without git: a missing branch is no error.
    """
    wanted = set(names)
    if not wanted or _git_executable(required=False) is None:
        return {}
    top = _toplevel(_existing_dir(root))
    if top is None:
        return {}
    out = _git(top, "for-each-ref", "--format=%(refname)%00%(objectname)", "refs/heads/")
    found = {}
    for line in os.fsdecode(out.stdout).splitlines():
        ref, _, sha = line.partition("\0")
        name = ref.removeprefix("refs/heads/")
        if name in wanted:
            found[name] = sha
    return found


def git_info(root: PathArg = ".", paths: Iterable[PathArg] = ()) -> GitInfo | None:
    """Commit, branch, remote and uncommitted changes of the repository holding ``root``.

    ``None`` outside a git repository (and when git is not installed and no
    ``.git`` folder is in sight). ``paths`` are the declared code paths, relative
    to ``root``: :attr:`GitInfo.dirty_paths` says which of them have changes.
    """
    base = _existing_dir(root)
    if _git_executable(required=False) is None:
        if any((d / ".git").exists() for d in (base, *base.parents)):
            _git_executable()  # raises: git is needed here and missing
        return None
    top = _toplevel(base)
    if top is None:
        return None
    # One status call gives commit, branch and every change; optional locks off so a
    # status never competes with the user's own git for the index lock.
    status = ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal"]
    out = _git(top, *status, env={"GIT_OPTIONAL_LOCKS": "0"}).stdout
    commit = branch = None
    changed: list[str] = []
    records = iter(os.fsdecode(r) for r in out.split(b"\0"))
    for record in records:
        kind, _, rest = record.partition(" ")
        if record.startswith("# branch.oid "):
            commit = None if rest.endswith("(initial)") else rest.split()[-1]
        elif record.startswith("# branch.head "):
            branch = None if rest.endswith("(detached)") else rest.partition(" ")[2]
        elif kind == "1":
            changed.append(record.split(" ", 8)[8])
        elif kind == "2":
            changed += [record.split(" ", 9)[9], next(records)]  # renamed: new, then old
        elif kind == "u":
            changed.append(record.split(" ", 10)[10])
        elif kind == "?":
            changed.append(rest)
    info = GitInfo(
        root=str(top),
        workdir=str(base),
        commit=commit,
        branch=branch,
        remote_url=_remote_url(top),
        dirty=bool(changed),
        changed=tuple(changed),
    )
    dirty_paths = info.dirty_among(paths)
    return replace(info, dirty_paths=dirty_paths)


def _remote_url(top: Path) -> str | None:
    out = _git(top, "config", "-z", "--get-regexp", r"^remote\..*\.url$", check=False).stdout
    urls: dict[str, str] = {}
    for entry in os.fsdecode(out).split("\0"):
        key, _, url = entry.partition("\n")
        if key and url:
            urls.setdefault(key[len("remote.") : -len(".url")], url)
    if not urls:
        return None
    return strip_credentials(urls.get("origin") or urls[min(urls)])


def check_clean(
    info: GitInfo | None, paths: Iterable[PathArg], allow_dirty: bool
) -> tuple[str, ...]:
    """Refuse a versioned run whose code paths have uncommitted changes, unless allowed.

    Returns the dirty paths (empty when clean, or outside git where there is
    nothing to compare with), so the caller can flag the version and store
    :func:`git_patch` with the run.
    """
    if info is None:
        return ()
    dirty = info.dirty_among(paths)
    if dirty and not allow_dirty:
        listed = ", ".join(repr(p) for p in dirty)
        raise DirtyTreeError(
            f"code paths {listed} have uncommitted changes; commit them, or pass "
            "allow_dirty=True to store the patch with the run and flag the version",
            hint=f"git status -- {' '.join(dirty)}",
            paths=list(dirty),
        )
    return dirty


def git_patch(root: PathArg = ".", paths: Iterable[PathArg] | None = None) -> bytes:
    """Every uncommitted change to ``paths`` (all of the tree if ``None``) as a binary diff.

    Staged, unstaged and untracked (not ignored) files alike, against HEAD, in
    the form ``git apply`` takes on a clean checkout of that commit. The user's
    index is left alone: the changes are staged into a throwaway index read
    from HEAD (which does write the untracked files' contents into the object
    store, as ``git stash -u`` would).
    """
    top, base = _require_repo(root)
    pathspec: list[str] = []
    for path in paths if paths is not None else ():
        full = _inside(base, path)
        if not full.exists():
            raise InvalidInput(
                f"code path {os.fspath(path)!r} does not exist under {base}",
                hint="pass paths relative to the project folder, e.g. code=['src/features.py']",
            )
        pathspec.append(_repo_path(top, base, path) or ".")
    if paths is not None and not pathspec:
        return b""
    has_head = _git(top, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode == 0
    with tempfile.TemporaryDirectory(prefix="dmv-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if has_head:
            _git(top, "read-tree", "HEAD", env=env)
        _git(top, "add", "--all", "--", *pathspec, env=env)
        against = "HEAD" if has_head else _empty_tree(top)
        diff = ["diff", "--cached", "--binary", "--full-index", "--no-renames", "--no-color"]
        diff += ["--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/"]
        return _git(top, *diff, against, "--", *pathspec, env=env).stdout


def _empty_tree(top: Path) -> str:
    out = _git(top, "hash-object", "-t", "tree", "--stdin", input=b"").stdout
    return os.fsdecode(out.strip())


def create_tag(root: PathArg, commit: str, tag_name: str, message: str) -> str:
    """Tag ``commit`` with an annotated tag; return the full commit id.

    Creating a tag that already points at ``commit`` is a no-op, so a retried
    release is harmless. A tag of that name pointing elsewhere is never moved.
    """
    top, _ = _require_repo(root)
    sha = _resolve_commit(top, commit)
    bad_name = tag_name.startswith("-") or (
        _git(top, "check-ref-format", f"refs/tags/{tag_name}", check=False).returncode != 0
    )
    if bad_name:
        raise InvalidInput(
            f"{tag_name!r} is not a valid git tag name",
            hint="no spaces, '~', '^', ':', '?', '*', '[', '..' or leading '-'",
        )
    existing = _tag_target(top, tag_name)
    if existing is None:
        created = _git(top, "tag", "--annotate", "--message", message, tag_name, sha, check=False)
        if created.returncode == 0:
            return sha
        existing = _tag_target(top, tag_name)  # someone else may have just created it
        if existing is None:
            raise _git_failure(("tag",), created)
    if existing != sha:
        raise ConflictError(
            f"tag {tag_name!r} already points at {existing[:12]}, not {sha[:12]}; "
            "dmv never moves a tag",
            hint=f"inspect it with 'git show {tag_name}'; delete it yourself "
            f"('git tag -d {tag_name}') only if it is wrong",
            tag=tag_name,
            commit=existing,
        )
    return sha


def _tag_target(top: Path, tag_name: str) -> str | None:
    ref = f"refs/tags/{tag_name}"
    if _git(top, "rev-parse", "--verify", "--quiet", ref, check=False).returncode != 0:
        return None
    # A tag on something other than a commit (a tree, a blob) still blocks the name.
    peeled = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return os.fsdecode(peeled.stdout.strip()) if peeled.returncode == 0 else ref


def checkout(root: PathArg, commit: str) -> str:
    """Check out ``commit`` (detached) in the repository holding ``root``; return its id.

    Refused while the working tree has uncommitted changes, untracked files
    included: they would be carried into the checkout and mixed into whatever is
    reproduced there.
    """
    top, base = _require_repo(root)
    sha = _resolve_commit(top, commit)
    info = git_info(base)
    if info is not None and info.dirty:
        shown = ", ".join(info.changed[:5]) + (
            f" and {len(info.changed) - 5} more" if len(info.changed) > 5 else ""
        )
        raise DirtyTreeError(
            f"cannot check out {commit}: the working tree at {top} has uncommitted changes "
            f"({shown})",
            hint="commit them, or put them aside with 'git stash --include-untracked', then retry",
            changed=list(info.changed),
        )
    _git(top, "checkout", "--quiet", "--detach", sha)
    return sha


def _resolve_commit(top: Path, commit: str) -> str:
    if not commit or commit.startswith("-"):
        raise InvalidInput(f"{commit!r} is not a commit", hint="give a commit id, tag or branch")
    found = _git(top, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", check=False)
    if found.returncode != 0:
        raise NotFound(
            f"commit {commit!r} is not in the repository at {top}",
            hint="'git fetch' it from the remote that has it",
        )
    return os.fsdecode(found.stdout.strip())


def _repo_path(top: Path, base: Path, path: PathArg) -> str:
    """``path`` (relative to ``base``) relative to the repository top, in git's form."""
    full = _inside(base, path)
    try:
        rel = full.relative_to(top)
    except ValueError:
        raise InvalidInput(
            f"path {os.fspath(path)!r} is outside the repository {top}",
            hint="keep the code the model needs inside the project's git repository",
        ) from None
    return "" if rel == Path() else rel.as_posix()


def _require_repo(root: PathArg) -> tuple[Path, Path]:
    base = _existing_dir(root)
    top = _toplevel(base)
    if top is None:
        raise InvalidInput(
            f"{base} is not inside a git repository",
            hint="run dmv from your project's git checkout, or 'git init' one",
        )
    return top, base


def _toplevel(base: Path) -> Path | None:
    found = _git(base, "rev-parse", "--show-toplevel", check=False)
    if found.returncode != 0:
        if b"not a git repository" in found.stderr:
            return None
        raise _git_failure(("rev-parse",), found)
    return Path(os.fsdecode(found.stdout.strip())).resolve()


_git_path: str | None = None


def _git_executable(required: bool = True) -> str | None:
    global _git_path
    if _git_path is None:
        _git_path = shutil.which("git")
    if _git_path is None and required:
        raise NotFound(
            "git is not installed (or not on PATH), and this needs it",
            hint="install git (e.g. 'apt-get install git'), then retry",
        )
    return _git_path


def _git(
    cwd: Path,
    *args: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    exe = _git_executable()
    assert exe is not None
    full_env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    # English messages (parsed below) and never a credential prompt.
    full_env.update({"LC_ALL": "C", "LANGUAGE": "C", "GIT_TERMINAL_PROMPT": "0", **(env or {})})
    try:
        done = subprocess.run(
            [exe, *_GIT_SAFE, *args], cwd=cwd, env=full_env, input=input, capture_output=True
        )
    except OSError as exc:
        raise GitError(
            f"cannot run git in {cwd}: {exc}",
            hint="install git and make sure the folder exists and is readable",
        ) from None
    if check and done.returncode != 0:
        raise _git_failure(args, done)
    return done


def _git_failure(args: Sequence[str], done: subprocess.CompletedProcess[bytes]) -> DmvError:
    err = done.stderr.decode("utf-8", "replace").strip()
    last = err.splitlines()[-1] if err else f"exit status {done.returncode}"
    if "dubious ownership" in err:
        return InvalidInput(
            "git refuses this repository: it belongs to another user",
            hint="if you trust it, run 'git config --global --add safe.directory <path>'",
        )
    if "Please tell me who you are" in err or "identity unknown" in err:
        return InvalidInput(
            "git needs an author identity to create annotated tags",
            hint="git config user.name 'Your Name' && git config user.email you@example.com",
        )
    return GitError(f"git {args[0]} failed: {last}", hint=err if err != last else None)


def git_identity(root: PathArg) -> str | None:
    """The repository's ``user.email`` (its own config, else the user's); None when unset
    or outside a git repository."""
    base = _existing_dir(root)
    if _git_executable(required=False) is None:
        return None
    top = _toplevel(base)
    if top is None:
        return None
    done = _git(top, "config", "--get", "user.email", check=False)
    email = done.stdout.decode("utf-8", "replace").strip()
    return email or None


def show_file(root: PathArg, commit: str, path: str) -> bytes | None:
    """The content of ``path`` (relative to the repository top) at ``commit``; None if absent."""
    top, _ = _require_repo(root)
    done = _git(top, "show", f"{commit}:{path}", check=False)
    return done.stdout if done.returncode == 0 else None


def repo_top(root: PathArg) -> Path:
    """The top folder of the git repository holding ``root``."""
    top, _ = _require_repo(root)
    return top


def add_worktree(root: PathArg, commit: str, dest: PathArg) -> Path:
    """Check ``commit`` out into a new, detached worktree at ``dest``."""
    top, _ = _require_repo(root)
    _git(top, "worktree", "add", "--detach", "--force", os.fspath(dest), commit)
    return Path(dest)


def remove_worktree(root: PathArg, dest: PathArg) -> None:
    """Remove a worktree made by :func:`add_worktree` (and its files)."""
    top, _ = _require_repo(root)
    _git(top, "worktree", "remove", "--force", os.fspath(dest), check=False)
    _git(top, "worktree", "prune", check=False)
    shutil.rmtree(dest, ignore_errors=True)


def apply_patch(root: PathArg, patch: bytes) -> None:
    """Apply a patch made by :func:`git_patch` to the working tree at ``root``."""
    _git(Path(root), "apply", "--whitespace=nowarn", "-", input=patch)
