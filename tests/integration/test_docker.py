"""The Dockerfile: no Docker engine runs here, so check what can be checked without one."""

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(keyword: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(keyword + " ")]


TORCHVISION_OF_TORCH = {
    "2.5.1": "0.20.1", "2.6.0": "0.21.0", "2.7.0": "0.22.0", "2.7.1": "0.22.1",
    "2.8.0": "0.23.0", "2.9.0": "0.24.0", "2.9.1": "0.24.1", "2.10.0": "0.25.0",
}
"""The torchvision release each torch release pairs with (the one a pytorch/pytorch image ships)."""


def base_image_mismatches(base: str, dependencies: list[str]) -> list[str]:
    """What the `pytorch/pytorch:<torch>-cuda...` image `base` ships and the `dependencies` of
    pyproject.toml refuse: each would make `pip install .` replace it with a second copy."""
    match = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda(\d+)\.(\d+)-cudnn\d+-runtime", base)
    assert match, f"not a pytorch/pytorch runtime tag: {base}"
    torch, cuda = match[1], f"+cu{match[2]}{match[3]}"  # the wheels' local label: 2.7.1+cu128
    assert torch in TORCHVISION_OF_TORCH, f"add torch {torch}'s torchvision to TORCHVISION_OF_TORCH"
    shipped = {"torch": torch + cuda, "torchvision": TORCHVISION_OF_TORCH[torch] + cuda}
    required = {r.name: r for r in map(Requirement, dependencies) if r.name in shipped}
    assert required.keys() == shipped.keys(), f"pyproject.toml requires {sorted(required)}"
    return [f"{base} ships {name} {version}, pyproject.toml requires {required[name]}"
            for name, version in shipped.items() if not required[name].specifier.contains(Version(version))]


def test_base_image_torch_and_torchvision_satisfy_pyproject():
    (base,) = instructions("FROM")
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert base_image_mismatches(base, dependencies) == []
    # the check catches the image that made `docker build` install a second torch
    old = base_image_mismatches("pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime", dependencies)
    assert len(old) == 2 and "torch 2.5.1" in old[0] and "torchvision 0.20.1" in old[1]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_image_ships_cuda_pytorch_and_the_user_is_not_root():
    (base,) = instructions("FROM")
    assert base.startswith("pytorch/pytorch:") and "cuda" in base and "runtime" in base
    assert instructions("USER")[-1].split(":")[0] not in ("root", "0")
    assert DOCKERFILE.index("USER") > DOCKERFILE.index("pip install")  # installed as root, run as the user


def test_entrypoint_is_the_console_script_of_the_package():
    assert instructions("ENTRYPOINT") == ['["lit-gan"]']
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["lit-gan"].split(":")
    assert module == "lit_gan.cli" and (ROOT / "lit_gan" / "cli.py").read_text().count(f"def {func}(") == 1


def test_copied_paths_exist_and_caches_are_writable_by_the_user():
    for copy in instructions("COPY"):
        *sources, _ = copy.split()
        for source in sources:
            assert (ROOT / source).exists(), source
    env = " ".join(instructions("ENV"))
    for var in ("TORCH_HOME", "WANDB_DIR", "XDG_CACHE_HOME", "LIT_GAN_CACHE"):
        assert var in env
    assert "chown -R gan:gan /workspace /home/gan" in DOCKERFILE
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", "runs", "data", "wandb"} <= set(ignored)


def test_no_api_key_is_baked_in():
    assert not re.search(r"WANDB_API_KEY\s*=", DOCKERFILE)
    assert "-e WANDB_API_KEY" in DOCKERFILE  # passed at run time, as the header shows


def test_the_image_install_step_builds_a_wheel_with_the_entry_point(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("lit_gan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lit_gan/cli.py" in names and "lit_gan/models/base.py" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "lit-gan = lit_gan.cli:console" in entry_points
