"""The W&B sweep definitions: well formed, and every command an agent would run trains."""

import itertools
import math
from pathlib import Path

import pytest
import yaml

from lit_gan.cli import main
from tests.fixtures import TINY_MODEL

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
TINY_RUN = [
    *TINY_MODEL, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=2", "--trainer.num_sanity_val_steps=0", "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


@pytest.fixture(scope="module")
def data_args(tmp_path_factory) -> dict[str, list[str]]:
    """Data the sweeps' batch sizes (up to 128) fit: the embedded digits, a 150-image CIFAR-10."""
    from tests.fixtures import write_cifar10

    cifar = tmp_path_factory.mktemp("cifar_sweep")
    write_cifar10(cifar, per_batch=30)
    return {
        "mnist": ["--data=EmbeddedMNIST"],
        "cifar10": [f"--data.init_args.data_dir={cifar}", "--data.init_args.download=false"],
    }


def samples(parameters: dict, n: int = 3) -> list[dict]:
    """n parameter sets that together visit every listed value and both ends of every range."""
    picks = []
    for i in range(n):
        chosen = {}
        for name, spec in parameters.items():
            if "values" in spec:
                chosen[name] = spec["values"][i % len(spec["values"])]
            elif "value" in spec:
                chosen[name] = spec["value"]
            else:
                lo, hi = spec["min"], spec["max"]
                chosen[name] = [lo, hi, math.sqrt(lo * hi) if lo > 0 else (lo + hi) / 2][i % 3]
        picks.append(chosen)
    return picks


def agent_command(sweep: dict, params: dict) -> list[str]:
    """The command line `wandb agent` runs, rendered with W&B's own helper and macro rules."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args  # 2 s to import: not at collection

    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    sweep_vars.update(env=["/usr/bin/env"], interpreter=["python"], program=[sweep.get("program", "")])
    return list(itertools.chain.from_iterable(
        sweep_vars.get(c[2:-1], []) if c.startswith("${") and c.endswith("}") else [c] for c in map(str, sweep["command"])
    ))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_is_well_formed(path):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] in ("grid", "random", "bayes")
    assert sweep["metric"]["goal"] in ("minimize", "maximize") and sweep["metric"]["name"] == "val/fid"
    for name, spec in sweep["parameters"].items():
        assert name.split(".")[0] in ("model", "data", "trainer"), name
        assert "values" in spec or "value" in spec or {"min", "max"} <= set(spec), name
    command = [str(c) for c in sweep["command"]]
    assert command[:3] == ["${env}", "lit-gan", "fit"] and command[-1] == "${args}"
    assert (ROOT / command[command.index("--config") + 1]).is_file()


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_sampled_agent_command_trains(path, cli_env, tmp_path, data_args):
    sweep = yaml.safe_load(path.read_text())
    for params in samples(sweep["parameters"]):
        command = agent_command(sweep, params)
        assert command[:2] == ["/usr/bin/env", "lit-gan"]
        assert all(f"--{k}={v}" in command for k, v in params.items())
        args = [a.replace("configs/", f"{ROOT}/configs/", 1) for a in command[2:]]
        args += [*TINY_RUN, *data_args[path.stem.rsplit("_", 1)[-1]], f"--runs_dir={tmp_path}"]
        cli = main(args)
        for key, value in params.items():  # the agent's values reached the model and data
            group, _, attr = key.partition(".init_args.")
            obj = cli.model if group == "model" else cli.datamodule
            if group == "model":
                got = cli.model.hparams
                for part in attr.split("."):
                    got = got[part]
            else:
                got = getattr(obj, attr)
            assert got == value, key
        assert (Path(cli.trainer.default_root_dir) / "checkpoints" / "last.ckpt").is_file()


def test_a_malformed_sweep_is_caught(tmp_path, capsys):
    bad = {"method": "bayes", "metric": {"name": "val/fid", "goal": "minimize"},
           "parameters": {"model.init_args.conditionl": {"values": [True]}},
           "command": ["${env}", "lit-gan", "fit", "--config", "configs/mnist/dcgan.yaml", "${args}"]}
    command = agent_command(bad, samples(bad["parameters"], 1)[0])
    with pytest.raises(SystemExit) as exit_info:
        main([a.replace("configs/", f"{ROOT}/configs/", 1) for a in command[2:]] + ["--print_config"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert not out  # no config printed: nothing would have trained
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lit-gan: error: "), err
    assert "'conditionl'" in lines[0] and "'conditional'" in lines[0], err  # names the bad key and the one meant
