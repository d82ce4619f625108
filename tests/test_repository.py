"""What the repository's own files say about the machine: nothing specific to one."""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"(?<![\w.])/(work|root|home/\w+)/")


def test_no_file_names_a_path_of_one_machine():
    """Commands in the project use the README's `.venv` or plain `python`, never a developer's folders."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    texts = [REPO / f for f in tracked if f.endswith((".py", ".md", ".yaml", ".toml", ".cfg", ".ci/run"))]  # the Dockerfile names the image's own folders
    offenders = [f"{p.relative_to(REPO)}:{n}" for p in texts if p.is_file()
                 for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if MACHINE_PATH.search(line)]
    assert offenders == [], offenders


@pytest.fixture(scope="module")
def module_resource() -> str:
    return "built once per module"


def test_tests_sharing_a_module_fixture_are_grouped_for_one_process(request, module_resource):
    """Under pytest-xdist's loadgroup, a test that uses a module-scoped fixture carries its module's
    group in its node id (pytest 9.2 moved node ids where xdist 3.8 cannot tag them: pinned below it)."""
    assert request.node.get_closest_marker("xdist_group").args == (request.node.path.as_posix(),)
    if getattr(request.config.option, "loadgroup", False):  # in an xdist worker under --dist loadgroup
        assert request.node.nodeid.endswith("@" + request.node.path.as_posix())
