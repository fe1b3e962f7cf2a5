"""dmv.logic against real files, real installed distributions and real git repositories."""

from __future__ import annotations

import enum
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dmv.errors import ConfigError, ConflictError, DirtyTreeError, InvalidInput, NotFound
from dmv.logic import git as gitlink
from dmv.logic.fingerprint import (
    LogicInfo,
    canonical_params,
    capture_environment,
    code_files,
    code_fingerprint,
    hyperparameters_fingerprint,
    imported_libraries,
    logic_fingerprint,
    logic_info,
)
from dmv.logic.git import (
    check_clean,
    checkout,
    create_tag,
    git_info,
    git_patch,
    strip_credentials,
    version_tag,
)
from dmv.version import Version

# Helpers ------------------------------------------------------------------------------------


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def _hermetic_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither the machine's git config nor a repository above tmp_path may leak in.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def make_project(root: Path) -> Path:
    write(root / "src" / "train.py", "import numpy\nimport json\nfrom . import features\n")
    write(root / "src" / "features" / "__init__.py", "")
    write(root / "src" / "features" / "scale.py", "def scale(x):\n    return x / 2\n")
    write(root / "README.md", "# project\n")
    write(root / "notes" / "ideas.txt", "try boosting\n")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "repo")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test Author")
    git(root, "config", "user.email", "author@example.com")
    write(root / ".gitignore", "*.log\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


# Hyperparameters ----------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_and_normalises_numbers() -> None:
    params = {"b": 1.0, "a": (1, 2.5), "c": {"z": None, "y": True}, "d": "é"}
    assert canonical_params(params) == '{"a":[1,2.5],"b":1,"c":{"y":true,"z":null},"d":"\\u00e9"}'


def test_equal_hyperparameters_give_equal_fingerprints() -> None:
    fp = hyperparameters_fingerprint
    base = fp({"lr": 0.1, "depth": 3, "layers": [64, 32], "opt": {"name": "adam", "beta": 0.9}})
    assert base == fp(
        {"opt": {"beta": 0.9, "name": "adam"}, "layers": (64, 32), "depth": 3.0, "lr": 0.1}
    )
    assert base.startswith("blake3:")
    numpy_params = {
        "lr": np.float64(0.1),
        "depth": np.int64(3),
        "layers": np.array([64, 32]),
        "opt": {"name": np.str_("adam"), "beta": np.float64(0.9)},
    }
    assert fp(numpy_params) == base
    assert fp({"flag": np.bool_(True)}) == fp({"flag": True})
    assert fp({"x": -0.0}) == fp({"x": 0})
    assert fp({"x": float("nan")}) == fp({"x": float("nan")})


def test_different_hyperparameters_give_different_fingerprints() -> None:
    fp = hyperparameters_fingerprint
    seen = {
        fp({"lr": 0.1}),
        fp({"lr": 0.10000001}),
        fp({"lr": 1}),
        fp({"lr": True}),  # True is not 1
        fp({"lr": "0.1"}),
        fp({"lr": None}),
        fp({"lr": [0.1]}),
        fp({"LR": 0.1}),
        fp({"lr": 0.1, "extra": None}),
        fp({}),
    }
    assert len(seen) == 10


def test_enum_values_count_by_their_value() -> None:
    class Loss(str, enum.Enum):  # noqa: UP042 - the mixin whose str() is not its value
        LOG = "log_loss"

    class Depth(enum.IntEnum):
        DEEP = 8

    assert canonical_params({"loss": Loss.LOG, "d": Depth.DEEP}) == '{"d":8,"loss":"log_loss"}'


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"model": {"layers": {1, 2}}}, "params['model']['layers'] is a set"),
        ({"path": Path("/data")}, "params['path'] is a PosixPath"),
        ({"grid": [1, object()]}, "params['grid'][1] is a object"),
        ({"m": {1: "a"}}, "params['m'] has the key 1"),
    ],
)
def test_values_without_json_form_are_refused_by_key(params: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidInput, match=where.replace("[", r"\[").replace("]", r"\]")) as info:
        hyperparameters_fingerprint(params)
    assert info.value.hint


def test_hyperparameters_must_be_a_mapping() -> None:
    with pytest.raises(InvalidInput, match="mapping"):
        hyperparameters_fingerprint([("lr", 0.1)])  # type: ignore[arg-type]


# Code ---------------------------------------------------------------------------------------


def test_code_fingerprint_covers_declared_code_only(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    paths = ["src"]
    first = code_fingerprint(paths, root)
    assert first == code_fingerprint(paths, root)
    assert sorted(code_files(paths, root)) == [
        "src/features/__init__.py",
        "src/features/scale.py",
        "src/train.py",
    ]

    write(root / "README.md", "# changed\n")
    write(root / "notes" / "new.txt", "unrelated\n")
    write(root / "src" / "__pycache__" / "train.cpython-311.pyc", b"\x00compiled")
    write(root / "src" / "features" / "scale.pyc", b"\x00compiled")
    write(root / "src" / ".ipynb_checkpoints" / "x.py", "checkpoint")
    assert code_fingerprint(paths, root) == first

    scale = root / "src" / "features" / "scale.py"
    original = scale.read_text()
    write(scale, original.replace("/ 2", "/ 3"))
    changed = code_fingerprint(paths, root)
    assert changed != first
    write(scale, original)
    assert code_fingerprint(paths, root) == first

    scale.rename(scale.with_name("scaling.py"))  # same content, new name
    assert code_fingerprint(paths, root) != first


def test_code_fingerprint_does_not_depend_on_where_the_project_lives(tmp_path: Path) -> None:
    a = make_project(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    assert code_fingerprint(["src", "README.md"], a) == code_fingerprint(["src", "README.md"], b)
    absolute = [a / "src", a / "README.md"]
    assert code_fingerprint(absolute, a) == code_fingerprint(["src", "README.md"], a)
    # Declaring a file and the folder holding it counts the file once.
    assert code_fingerprint(["src", "src/train.py"], a) == code_fingerprint(["src"], a)


def test_code_paths_must_exist_inside_the_root(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    with pytest.raises(InvalidInput, match=r"'src/missing\.py' does not exist") as info:
        code_fingerprint(["src", "src/missing.py"], root)
    assert info.value.hint
    with pytest.raises(InvalidInput, match="outside the project root"):
        code_fingerprint(["../other"], root)
    with pytest.raises(InvalidInput, match="no training-code paths"):
        code_fingerprint([], root)
    with pytest.raises(NotFound, match="does not exist"):
        code_fingerprint(["src"], tmp_path / "nope")


def test_code_fingerprint_is_head_plus_uncommitted_changes(repo: Path) -> None:
    clean = code_fingerprint(["src"], repo)
    write(repo / "src" / "train.py", "import numpy\nprint('changed')\n")
    write(repo / "src" / "new_module.py", "X = 1\n")
    dirty = code_fingerprint(["src"], repo)
    assert dirty != clean
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "commit the change")
    assert code_fingerprint(["src"], repo) == dirty  # committing changes nothing in the content
    git(repo, "checkout", "-q", "HEAD~1")
    assert code_fingerprint(["src"], repo) == clean


# Libraries ----------------------------------------------------------------------------------


def fake_distribution(site: Path, name: str, module: str, version: str) -> None:
    folder = name.replace("-", "_")  # as installers name it
    for old in site.glob(f"{folder}-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"{folder}-{version}.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    write(info / "top_level.txt", f"{module}\n")
    write(site / module / "__init__.py", "")


def test_imported_libraries_maps_modules_to_installed_distributions(tmp_path: Path) -> None:
    import numpy
    import sklearn

    root = tmp_path / "p"
    write(
        root / "train.py",
        "import os, json\nimport numpy as np\nfrom sklearn.ensemble import RandomForestClassifier\n"
        "from . import helpers\nimport helpers\nfrom __future__ import annotations\n"
        "try:\n    import not_installed_anywhere_xyz\nexcept ImportError:\n    pass\n",
    )
    write(root / "helpers.py", "import collections.abc\n")
    assert imported_libraries(["train.py", "helpers.py"], root) == {
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def test_the_codes_own_modules_are_not_libraries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "helpers-dist", "helpers", "9.9")
    fake_distribution(site, "toolbox", "toolbox", "0.3")
    monkeypatch.syspath_prepend(str(site))
    root = tmp_path / "p"
    write(root / "train.py", "import helpers\nimport toolbox\n")
    write(root / "helpers.py", "X = 1\n")  # shadows the installed distribution
    assert imported_libraries(["train.py", "helpers.py"], root) == {"toolbox": "0.3"}
    assert imported_libraries(["train.py"], root) == {"helpers-dist": "9.9", "toolbox": "0.3"}


def test_a_library_upgrade_changes_the_logic_and_nothing_else_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "Fake_Lib", "fakelib", "1.0")
    monkeypatch.syspath_prepend(str(site))
    root = tmp_path / "p"
    write(root / "train.py", "import fakelib.sub\n")
    write(root / "other.txt", "not code\n")
    params = {"lr": 0.1}

    before = logic_info(["train.py"], root, params)
    assert before.libraries == {"fake-lib": "1.0"}  # normalised name
    write(root / "other.txt", "still not code\n")
    assert logic_info(["train.py"], root, params).fingerprint == before.fingerprint

    fake_distribution(site, "Fake_Lib", "fakelib", "1.1")
    after = logic_info(["train.py"], root, params)
    assert after.libraries == {"fake-lib": "1.1"}
    assert after.fingerprint != before.fingerprint
    assert after.diff(before) == {"library fake-lib": ("1.0", "1.1")}

    # A team that pins libraries elsewhere leaves them out of the logic.
    no_libs = ("code", "python", "params")
    assert logic_info(["train.py"], root, params, no_libs).fingerprint == (
        LogicInfo(before.code, before.libraries, before.python, before.params, no_libs).fingerprint
    )


def test_unparseable_code_is_refused_with_its_line(tmp_path: Path) -> None:
    write(tmp_path / "bad.py", "import os\ndef broken(:\n")
    with pytest.raises(InvalidInput, match=r"bad\.py:2"):
        imported_libraries(["bad.py"], tmp_path)


# The logic fingerprint ----------------------------------------------------------------------


def test_logic_fingerprint_moves_with_every_counted_part() -> None:
    base = ("blake3:code", {"numpy": "2.0.0"}, "3.11", "blake3:params")
    fp = logic_fingerprint(*base)
    assert fp == logic_fingerprint(*base)
    variants = [
        ("blake3:code2", {"numpy": "2.0.0"}, "3.11", "blake3:params"),
        ("blake3:code", {"numpy": "2.0.1"}, "3.11", "blake3:params"),
        ("blake3:code", {"numpy": "2.0.0", "scipy": "1.0"}, "3.11", "blake3:params"),
        ("blake3:code", {"numpy": "2.0.0"}, "3.12", "blake3:params"),
        ("blake3:code", {"numpy": "2.0.0"}, "3.11", "blake3:params2"),
    ]
    assert len({fp, *(logic_fingerprint(*v) for v in variants)}) == 6
    # Metadata spelling and dict order are not logic.
    assert logic_fingerprint("blake3:code", {"NumPy": "2.0.0"}, "3.11", "blake3:params") == fp


def test_components_choose_what_counts() -> None:
    only = ("params", "code")
    a = logic_fingerprint("c", {"numpy": "1"}, "3.11", "p", only)
    assert a == logic_fingerprint("c", {"numpy": "2"}, "3.12", "p", ("code", "params"))
    assert a != logic_fingerprint("c", {"numpy": "1"}, "3.11", "p")
    assert a != logic_fingerprint("c2", {"numpy": "1"}, "3.11", "p", only)
    with pytest.raises(ConfigError, match="non-empty choice") as info:
        logic_fingerprint("c", {}, "3.11", "p", ("code", "gpu"))
    assert info.value.hint and "dmv.toml" in info.value.hint
    with pytest.raises(ConfigError):
        logic_fingerprint("c", {}, "3.11", "p", ())


def test_logic_info_round_trips_and_diffs(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    info = logic_info(["src"], root, {"lr": 0.1})
    assert info.python == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert info.code == code_fingerprint(["src"], root)
    assert info.params == hyperparameters_fingerprint({"lr": 0.1})
    data = json.loads(json.dumps(info.to_dict()))
    assert data["fingerprint"] == info.fingerprint
    back = LogicInfo.from_dict(data)
    assert back == info and back.fingerprint == info.fingerprint
    assert info.diff(back) == {}

    write(root / "src" / "features" / "scale.py", "def scale(x):\n    return x\n")
    changed = logic_info(["src"], root, {"lr": 0.2})
    diff = changed.diff(info)
    assert set(diff) == {"code", "params", "file src/features/scale.py"}
    assert diff["params"] == (info.params, changed.params)
    with pytest.raises(InvalidInput, match="lacks 'code'"):
        LogicInfo.from_dict({"python": "3.11"})


# The environment ----------------------------------------------------------------------------


def test_environment_describes_this_process() -> None:
    import pytest as pytest_module

    env = capture_environment(refresh=True)
    assert env.python_version == platform.python_version()
    assert env.python_minor == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert env.python_executable == sys.executable
    assert env.cpu_count == os.cpu_count() and env.machine == platform.machine()
    distributions = dict(env.distributions)
    assert distributions["pytest"] == pytest_module.__version__
    assert "dmv" in distributions and "scikit-learn" in distributions
    data = json.loads(json.dumps(env.to_dict()))
    assert data["python"]["version"] == platform.python_version()
    assert data["distributions"]["pytest"] == pytest_module.__version__


def test_environment_is_cached_and_fast_when_warm() -> None:
    first = capture_environment()
    started = time.perf_counter()
    for _ in range(100):
        again = capture_environment()
    assert (time.perf_counter() - started) / 100 < 0.1
    assert again is first


def test_gpus_are_read_from_nvidia_smi_and_never_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    try:
        assert capture_environment(refresh=True).gpus == ()  # no nvidia-smi: no GPU, no error

        tool = write(bin_dir / "nvidia-smi", "#!/bin/sh\necho 'Tesla T4, 15360 MiB, 535.1'\n")
        tool.chmod(0o755)
        assert capture_environment(refresh=True).gpus == ("Tesla T4, 15360 MiB, 535.1",)

        write(tool, "#!/bin/sh\necho 'driver not loaded' >&2\nexit 9\n")
        assert capture_environment(refresh=True).gpus == ()
    finally:
        monkeypatch.undo()
        capture_environment(refresh=True)


# Git: information ---------------------------------------------------------------------------


def test_git_info_of_a_clean_repository(repo: Path) -> None:
    info = git_info(repo, ["src"])
    assert info is not None
    assert info.commit == git(repo, "rev-parse", "HEAD")
    assert info.branch == "main"
    assert info.remote_url is None
    assert (info.dirty, info.changed, info.dirty_paths) == (False, (), ())
    assert Path(info.root) == repo.resolve()
    assert info.to_dict()["commit"] == info.commit
    # From a subfolder, paths are relative to that folder.
    sub = git_info(repo / "src", ["features"])
    assert sub is not None and sub.root == info.root and sub.commit == info.commit


def test_dirty_detection_tells_code_paths_from_the_rest(repo: Path) -> None:
    paths = ["src/features", "src/train.py", "README.md"]
    write(repo / "notes" / "ideas.txt", "unrelated change\n")
    write(repo / "debug.log", "ignored by .gitignore\n")
    info = git_info(repo, paths)
    assert info is not None and info.dirty
    assert info.changed == ("notes/ideas.txt",)
    assert info.dirty_paths == ()

    write(repo / "src" / "features" / "new.py", "untracked\n")
    write(repo / "README.md", "staged\n")
    git(repo, "add", "README.md")
    info = git_info(repo, paths)
    assert info is not None
    assert info.dirty_paths == ("src/features", "README.md")
    assert "src/features/new.py" in info.changed

    # An untracked folder is listed as the folder; a declared path inside it is dirty.
    write(repo / "pipeline" / "steps" / "a.py", "new\n")
    info = git_info(repo, ["pipeline/steps/a.py", "src/train.py"])
    assert info is not None
    assert "pipeline/" in info.changed
    assert info.dirty_paths == ("pipeline/steps/a.py",)


def test_renames_count_on_both_sides(repo: Path) -> None:
    git(repo, "mv", "src/features/scale.py", "src/scale.py")
    info = git_info(repo, ["src/features"])
    assert info is not None
    assert set(info.changed) >= {"src/scale.py", "src/features/scale.py"}
    assert info.dirty_paths == ("src/features",)


def test_detached_head_unborn_branch_and_no_repository(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach", first)
    info = git_info(repo)
    assert info is not None and info.branch is None and info.commit == first

    fresh = make_project(tmp_path / "fresh")
    git(fresh, "init", "-q", "-b", "trunk")
    info = git_info(fresh, ["src"])
    assert info is not None
    assert (info.commit, info.branch, info.dirty, info.dirty_paths) == (
        None,
        "trunk",
        True,
        ("src",),
    )

    plain = make_project(tmp_path / "plain")
    assert git_info(plain, ["src"]) is None
    assert check_clean(None, ["src"], allow_dirty=False) == ()


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:token@host.example/x.git", "https://host.example/x.git"),
        ("https://ghp_secret@github.com/o/r.git", "https://github.com/o/r.git"),
        ("http://u:p@[::1]:8443/r.git", "http://[::1]:8443/r.git"),
        ("https://u:p%40ss@host/a/b@c.git", "https://host/a/b@c.git"),
        ("ssh://git:hunter2@host:22/r.git", "ssh://git@host:22/r.git"),
        ("ssh://git@host/r.git", "ssh://git@host/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("https://host/r.git", "https://host/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_credentials_are_stripped_from_remote_urls(url: str, clean: str) -> None:
    assert strip_credentials(url) == clean


def test_remote_url_is_recorded_without_credentials(repo: Path) -> None:
    git(repo, "remote", "add", "upstream", "https://bob:pw@mirror.example/r.git")
    info = git_info(repo)
    assert info is not None and info.remote_url == "https://mirror.example/r.git"
    git(repo, "remote", "add", "origin", "https://alice:s3cret-token@git.example/team/r.git")
    info = git_info(repo)
    assert info is not None and info.remote_url == "https://git.example/team/r.git"
    assert "s3cret" not in json.dumps(info.to_dict())


def test_a_calling_git_hook_does_not_redirect_us(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_project(tmp_path / "other")
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    info = git_info(repo)
    assert info is not None and Path(info.root) == repo.resolve() and not info.dirty


def test_missing_git_is_explained(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gitlink, "_git_path", None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert git_info(make_project(tmp_path / "plain")) is None  # no repository in sight anyway
    with pytest.raises(NotFound, match="git is not installed") as info:
        git_info(repo)
    assert info.value.hint and "install git" in info.value.hint
    with pytest.raises(NotFound, match="git is not installed"):
        git_patch(repo)


# Git: dirty runs ----------------------------------------------------------------------------


def test_check_clean_refuses_dirty_code_unless_allowed(repo: Path) -> None:
    write(repo / "README.md", "dirty, but not code\n")
    info = git_info(repo, ["src"])
    assert check_clean(info, ["src"], allow_dirty=False) == ()

    write(repo / "src" / "train.py", "print('dirty')\n")
    info = git_info(repo, ["src", "README.md"])
    with pytest.raises(DirtyTreeError) as refused:
        check_clean(info, ["src", "notes"], allow_dirty=False)
    assert str(refused.value) == (
        "code paths 'src' have uncommitted changes; commit them, or pass allow_dirty=True "
        "to store the patch with the run and flag the version"
    )
    assert isinstance(refused.value, ConflictError)
    assert refused.value.to_dict()["error"]["code"] == "dirty_tree"
    assert check_clean(info, ["src", "notes"], allow_dirty=True) == ("src",)


def changed_worktree(repo: Path) -> None:
    write(repo / "src" / "train.py", "import numpy\nprint('unstaged')\n")
    write(repo / "src" / "features" / "scale.py", "def scale(x):\n    return x * 10\n")
    git(repo, "add", "src/features/scale.py")  # staged
    write(repo / "src" / "features" / "scale.py", "def scale(x):\n    return x * 11\n")  # and more
    (repo / "src" / "features" / "__init__.py").unlink()
    write(repo / "src" / "models" / "deep" / "net.py", "LAYERS = 3\n")  # untracked, nested
    write(repo / "src" / "weights.bin", bytes(range(256)) * 4)  # untracked, binary
    write(repo / "src" / "run.log", "ignored\n")
    write(repo / "README.md", "outside the code paths\n")


def apply_to_clean_clone(repo: Path, patch: bytes, target: Path) -> Path:
    git(repo.parent, "clone", "-q", str(repo), str(target))
    subprocess.run(["git", "apply", "--binary", "-"], cwd=target, input=patch, check=True)
    return target


def test_patch_reproduces_the_uncommitted_code_on_a_clean_checkout(
    repo: Path, tmp_path: Path
) -> None:
    changed_worktree(repo)
    status_before = git(repo, "status", "--porcelain")
    staged_before = git(repo, "diff", "--cached")

    patch = git_patch(repo, ["src"])
    assert b"GIT binary patch" in patch
    assert b"README.md" not in patch and b"run.log" not in patch
    clone = apply_to_clean_clone(repo, patch, tmp_path / "clone")
    assert code_files(["src"], clone) == {
        k: v for k, v in code_files(["src"], repo).items() if k != "src/run.log"
    }
    assert code_fingerprint(["src"], clone) != code_fingerprint(["src"], repo)  # run.log only
    (repo / "src" / "run.log").unlink()
    assert code_fingerprint(["src"], clone) == code_fingerprint(["src"], repo)
    assert (clone / "README.md").read_text() == "# project\n"
    # The user's index and status are as they were.
    assert git(repo, "status", "--porcelain") == status_before
    assert git(repo, "diff", "--cached") == staged_before


def test_patch_keeps_tracked_files_that_match_gitignore(repo: Path, tmp_path: Path) -> None:
    write(repo / "src" / "baseline.log", "tracked on purpose\n")
    git(repo, "add", "--force", "src/baseline.log")
    git(repo, "commit", "-qm", "keep a log")
    write(repo / "src" / "baseline.log", "tracked, and changed\n")
    clone = apply_to_clean_clone(repo, git_patch(repo, ["src"]), tmp_path / "clone")
    assert (clone / "src" / "baseline.log").read_text() == "tracked, and changed\n"
    assert code_files(["src"], clone) == code_files(["src"], repo)


def test_patch_of_the_whole_tree_and_of_a_clean_tree(repo: Path, tmp_path: Path) -> None:
    assert git_patch(repo) == b""
    assert git_patch(repo, ["src"]) == b""
    changed_worktree(repo)
    clone = apply_to_clean_clone(repo, git_patch(repo), tmp_path / "clone")
    assert (clone / "README.md").read_text() == "outside the code paths\n"
    assert (clone / "src" / "weights.bin").read_bytes() == bytes(range(256)) * 4
    assert not (clone / "src" / "run.log").exists()
    with pytest.raises(InvalidInput, match="does not exist"):
        git_patch(repo, ["src/nothing.py"])


def test_patch_in_a_repository_without_commits(tmp_path: Path) -> None:
    fresh = make_project(tmp_path / "fresh")
    git(fresh, "init", "-q")
    patch = git_patch(fresh, ["src"])
    target = tmp_path / "target"
    target.mkdir()
    git(target, "init", "-q")
    subprocess.run(["git", "apply", "-"], cwd=target, input=patch, check=True)
    assert code_files(["src"], target) == code_files(["src"], fresh)


# Git: tags and checkout ---------------------------------------------------------------------


def test_create_tag_is_idempotent_and_never_moves_a_tag(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    name = version_tag(Version.parse("price-model 0.0.1-0123.abcd"))
    assert name == "price-model@0.0.1-0123.abcd"
    assert create_tag(repo, "HEAD", name, "dmv: price-model 0.0.1-0123.abcd") == first
    assert git(repo, "rev-parse", f"{name}^{{commit}}") == first
    assert git(repo, "cat-file", "-t", name) == "tag"  # annotated
    assert "dmv: price-model 0.0.1-0123.abcd" in git(repo, "tag", "-n1", name)
    assert create_tag(repo, first[:10], name, "again") == first  # same commit: nothing to do

    write(repo / "src" / "train.py", "print(2)\n")
    git(repo, "commit", "-qam", "second")
    second = git(repo, "rev-parse", "HEAD")
    with pytest.raises(ConflictError, match="already points at") as refused:
        create_tag(repo, second, name, "move it")
    assert refused.value.hint and "git show" in refused.value.hint
    assert git(repo, "rev-parse", f"{name}^{{commit}}") == first

    with pytest.raises(InvalidInput, match="not a valid git tag name"):
        create_tag(repo, second, "price model 1", "bad")
    with pytest.raises(InvalidInput, match="not a valid git tag name"):
        create_tag(repo, second, "-f", "bad")
    with pytest.raises(NotFound, match="not in the repository") as missing:
        create_tag(repo, "0" * 40, "other", "m")
    assert missing.value.hint and "git fetch" in missing.value.hint


def test_create_tag_explains_a_missing_identity(tmp_path: Path) -> None:
    root = make_project(tmp_path / "anon")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=x", "-c", "user.email=x@example.com", "commit", "-qm", "first")
    git(root, "config", "user.useConfigOnly", "true")
    with pytest.raises(InvalidInput, match="author identity") as refused:
        create_tag(root, "HEAD", "model@0.0.1-a.b", "m")
    assert refused.value.hint and "user.email" in refused.value.hint


def test_checkout_moves_a_clean_tree_and_refuses_a_dirty_one(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    write(repo / "src" / "train.py", "print('second')\n")
    git(repo, "commit", "-qam", "second")
    second = git(repo, "rev-parse", "HEAD")

    assert checkout(repo, first) == first
    assert git(repo, "rev-parse", "HEAD") == first
    assert (repo / "src" / "train.py").read_text().startswith("import numpy")

    write(repo / "src" / "train.py", "print('local edit')\n")
    with pytest.raises(DirtyTreeError, match=r"uncommitted changes \(src/train\.py\)") as refused:
        checkout(repo, second)
    assert refused.value.hint and "git stash" in refused.value.hint
    assert git(repo, "rev-parse", "HEAD") == first
    assert (repo / "src" / "train.py").read_text() == "print('local edit')\n"

    git(repo, "checkout", "--", "src/train.py")
    write(repo / "scratch.py", "untracked\n")
    with pytest.raises(DirtyTreeError, match=r"scratch\.py"):
        checkout(repo, second)
    (repo / "scratch.py").unlink()
    assert checkout(repo, "main") == second
    with pytest.raises(NotFound, match="not in the repository"):
        checkout(repo, "no-such-branch")


def test_git_operations_outside_a_repository_are_refused(tmp_path: Path) -> None:
    plain = make_project(tmp_path / "plain")
    for call in (
        lambda: git_patch(plain),
        lambda: create_tag(plain, "HEAD", "t", "m"),
        lambda: checkout(plain, "HEAD"),
    ):
        with pytest.raises(InvalidInput, match="not inside a git repository") as refused:
            call()
        assert refused.value.hint and "git init" in refused.value.hint
