"""The repository as shipped: no build machine's folders in tracked files, every data file of the
package installed by `pip install .`."""
import glob
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# An absolute path into a user's or a machine's own folders (home directories, the build
# machine's work folder, a scratch folder under the system temp; not /mnt/..., which the docs use
# for an example shared drive). A path preceded by a letter, digit or slash is part of something
# else (a URL path, a relative path) and is not matched.
MACHINE_PATH = r"(^|[^A-Za-z0-9_.~$/-])(/(work|root|home|Users)/|/tmp/[a-z])"
# Absolute paths that are the same on every machine and may appear (none matches MACHINE_PATH;
# listed so that a wider pattern keeps them).
ALLOWED = ("/usr/share/datasets", "/dev/null", "/proc/meminfo", "/proc/self/status")


def tracked_text_lines_matching(pattern: str) -> list[str]:
    proc = subprocess.run(["git", "grep", "-nIE", pattern], cwd=REPO, capture_output=True, text=True)
    if proc.returncode == 1:
        return []
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_no_tracked_file_holds_an_absolute_path_of_the_build_machine():
    """Docs, scripts, tests and committed outputs name paths relative to the repository (the
    mirror is `$PWD/../shared/datasets`), so they hold on any clone."""
    hits = [line for line in tracked_text_lines_matching(MACHINE_PATH)
            if not any(allowed in line for allowed in ALLOWED)]
    assert hits == [], "absolute machine paths in tracked files:\n" + "\n".join(hits)


def test_the_machine_path_pattern_catches_what_it_should():
    pattern = re.compile(MACHINE_PATH)
    for bad in ("export CLUSTERBENCH_MIRROR=/" + "work/shared/datasets", "(`/" + "home/me/src`)",
                'Path("/' + "root/.cache/x\")", "see /" + "tmp/pytest-of-me/x"):
        assert pattern.search(bad), bad
    for fine in ("/usr/share/datasets/fashion-mnist", "https://example.org/home/page", "$PWD/../shared/datasets",
                 "docs/work/x", "/dev/null", "/proc/meminfo", "~/src/clusterbench", "/tmp/"):
        assert not pattern.search(fine), fine


def package_data_files(pyproject: Path) -> set[Path]:
    """The non-Python files of clusterbench/ that setuptools installs, from [tool.setuptools.package-data]."""
    config = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
    covered = set()
    for package, patterns in config.get("package-data", {}).items():
        root = pyproject.parent / package.replace(".", os.sep) if package != "*" else pyproject.parent / "clusterbench"
        for pattern in patterns:
            covered |= {Path(p).resolve() for p in glob.glob(str(root / pattern), recursive=True)}
    return covered


def test_every_data_file_of_the_package_is_package_data():
    """`pip install .` installs only .py files and what package-data lists: a data file outside it
    (clustering_data_v1.tsv, read when clusterbench.datasets is imported) breaks the installed package."""
    data_files = {p.resolve() for p in (REPO / "clusterbench").rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert (REPO / "clusterbench" / "datasets" / "clustering_data_v1.tsv").resolve() in data_files
    missing = sorted(str(p.relative_to(REPO)) for p in data_files - package_data_files(REPO / "pyproject.toml"))
    assert missing == [], f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"
