"""The `lit-gan` command: Lightning's CLI with GAN models and datasets chosen by class name.

    lit-gan fit --config configs/quickstart.yaml
    lit-gan fit --model DCGAN --data FashionMNIST --trainer.max_epochs 5
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import enum
import errno
import importlib
import inspect
import itertools
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import yaml
from jsonargparse import ArgumentError
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

import lit_gan.data  # noqa: F401  (registers the DataModules for --data NAME)
import lit_gan.models  # noqa: F401  (registers the models for --model NAME)
from lit_gan import nets, progress
from lit_gan.callbacks import BestCheckpoint, Evaluation, LastCheckpoint, SampleGrid
from lit_gan.errors import Diverged
from lit_gan.folders import new_run_dir, run_of
from lit_gan.checkpoint_io import read_checkpoint, with_safe_io
from lit_gan.data import ImageDataModule
from lit_gan.distributed import STRATEGIES
from lit_gan.models import GAN, legacy
from lit_gan.tracking import ResumableCSVLogger, WandbSettings, check_wandb_mode, wandb_logger
from lit_gan.trust import canonical, named_classes

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)

# Lightning's enum defaults (Timer's `interval`, ...) written into configs as their values
yaml.SafeDumper.add_multi_representer(enum.Enum, lambda dumper, value: dumper.represent_data(value.value))

NOT_FOR_USERS = (  # lines that other libraries print and a lit_gan user can do nothing about
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning's own use of torch's pytree
    r"Checkpoint directory .* exists and is not empty",  # lit_gan refuses other runs' folders itself
)


def _no_tip(record: logging.LogRecord) -> bool:
    return "💡 Tip" not in str(record.msg)


def quiet() -> None:
    """Drop the lines of `NOT_FOR_USERS` and Lightning's advertisement for its cloud logger (each
    filter once, however many commands a process runs)."""
    for pattern in NOT_FOR_USERS:
        warnings.filterwarnings("ignore", message=pattern)  # warnings dedups equal filters
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_no_tip)  # so does logging, for one function


RUN_DIR_ENV = "LIT_GAN_RUN_DIR"


def check_writable(folder: Path) -> None:
    """Stop before training when the run folder cannot be written (found otherwise at the first save)."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"cannot write to {folder} ({error.strerror}); choose another --runs_dir or "
                              "--trainer.default_root_dir") from None


def check_outputs_free(run: Path, checkpoint_dirs: set[Path], ckpt_path: str | None, run_id: str | None) -> None:
    """A fit writes only into folders that hold no other run's checkpoints or samples: a fresh fit
    needs them empty; a resume may write where its checkpoint lies or where the checkpoints are
    of its own run (the `run_id` every checkpoint keeps)."""
    own = Path(ckpt_path).resolve().parent if ckpt_path else None
    for folder in sorted({run / "checkpoints", *checkpoint_dirs}):
        found = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
        if not found or folder.resolve() == own or (run_id is not None and {_run_id(p) for p in found} == {run_id}):
            continue
        fix = (f"resume it with --ckpt_path {folder / 'last.ckpt'}, or " if own is None else "") + \
            "give this run another --trainer.default_root_dir (and leave --checkpoint.dirpath / --last_checkpoint.dirpath unset)"
        raise FileExistsError(f"{folder} already holds another run's checkpoints, which this fit would overwrite; {fix}")
    samples = run / "samples"
    if own is None and samples.is_dir() and any(samples.iterdir()):
        raise FileExistsError(f"{samples} already holds another run's samples; choose a new --trainer.default_root_dir")


def _run_id(path: Path) -> str | None:
    """The run a checkpoint belongs to (memory-mapped: its tensors are not read)."""
    try:
        return read_checkpoint(path, mmap=True).get("run_id")
    except (ValueError, OSError):
        return None


class TrainedOn:
    """What a checkpoint was trained on; a resume must continue on the same data, and every
    command needs images of the same shape and classes."""

    def __init__(self, path: str, identity: Any, image_shape: Any, num_classes: Any, run_id: str | None) -> None:
        self.path, self.identity, self.image_shape, self.num_classes = path, identity, image_shape, num_classes
        self.run_id = run_id

    def check(self, datamodule: Any, resume: bool) -> None:
        shape, classes = tuple(getattr(datamodule, "image_shape", ())), getattr(datamodule, "num_classes", None)
        fix = f"to train on other data, start a new run with --weights_from {self.path}"
        if self.image_shape is not None and (tuple(self.image_shape), self.num_classes) != (shape, classes):
            raise ValueError(f"{self.path} was trained on {_shape(self.image_shape)} images of {self.num_classes} classes, "
                             f"but the data gives {_shape(shape)} images of {classes} classes; use the run's own data "
                             f"settings (its config.yaml), or {fix}")
        identity = _plain_json(datamodule.cache_identity()) if callable(getattr(datamodule, "cache_identity", None)) else None
        if resume and self.identity is not None and identity is not None and identity != self.identity:
            changed = "; ".join(_differences(self.identity, identity)) or f"{self.identity} -> {identity}"
            raise ValueError(f"--ckpt_path {self.path} continues a run on other data than it was trained on ({changed}); "
                             f"resume with the run's own config.yaml, or {fix}")


def _shape(shape: Any) -> str:
    return "x".join(str(n) for n in shape)


def _plain_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class TrainingError(RuntimeError):
    """An error raised once training had started: shown with its traceback, never as a one-liner."""


class SaveConfig(SaveConfigCallback):
    """`fit` writes `config.yaml` into the run directory (whatever logger is chosen; Lightning's
    would go to the logger's folder) and sends the resolved config to W&B; validate/test/predict
    leave the run's config as it is. The output folders lit_gan chose (`unpinned`: the run
    directory, the checkpoint folders) are saved unset, so a new run started from this config gets
    a folder of its own, and a resume finds the run from its checkpoint."""

    unpinned: tuple[str, ...] = ()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self.already_saved:
            return
        config = self.config.clone()
        for key in self.unpinned:
            config[key] = None
        if trainer.is_global_zero:
            run = Path(trainer.default_root_dir)
            run.mkdir(parents=True, exist_ok=True)
            self.parser.save(config, str(run / self.config_filename), skip_none=False, overwrite=True, multifile=self.multifile)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.config.update({"cli": config.as_dict()}, allow_val_change=True)
        self.already_saved = True


class GANCLI(LightningCLI):
    """Links the data's image shape and class count into the model; gives every run its own
    directory (`runs/<data>-<model>-<time>` unless `--trainer.default_root_dir` is set) holding
    config, logs, `checkpoints/` (last and best) and `samples/`."""

    _resume_at: tuple[int, int] | None = None  # (epoch, logged step) of the --ckpt_path checkpoint
    _trained_on: TrainedOn | None = None  # the data the --ckpt_path checkpoint was trained on
    _derived: list[str] = []  # output paths lit_gan chose (not the user): left out of the saved config

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.link_arguments("data.image_shape", "model.init_args.image_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.add_lightning_class_args(SampleGrid, "samples")
        parser.add_lightning_class_args(Evaluation, "evaluation")
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")  # the best by --checkpoint.monitor (val/fid), in its direction
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.link_arguments("evaluation.every_n_epochs", "checkpoint.every_n_epochs")
        parser.set_defaults(
            {
                "checkpoint.filename": "best-epoch{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_argument("--runs_dir", default="runs", help="Parent folder of the per-run directories.")
        parser.add_argument("--weights_from", type=Optional[str], default=None,
                            help="fit: start G and D (and the EMA) from another run's checkpoint (fine-tuning); tensors "
                                 "whose shape differs keep their fresh values.")
        parser.add_class_arguments(WandbSettings, "wandb")
        from lit_gan.callbacks import PredictionWriter  # `predict` writes its images into the run

        parser.add_lightning_class_args(PredictionWriter, "predictions")

    def before_instantiate_classes(self) -> None:
        cfg = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        trainer = cfg.trainer
        if trainer.logger in (None, True):  # W&B's settings checked before the run directory is made
            check_wandb_mode()
        child = os.environ.get("LOCAL_RANK", "0") != "0" and RUN_DIR_ENV in os.environ  # a DDP worker
        ckpt_path = cfg.get("ckpt_path")
        if trainer.default_root_dir is None:
            model, data = (cfg[k].class_path.rsplit(".", 1)[-1].lower() for k in ("model", "data"))
            own = run_of(ckpt_path)
            trainer.default_root_dir = (os.environ[RUN_DIR_ENV] if child else str(own) if own
                                        else str(new_run_dir(cfg.runs_dir, f"{data}-{model}")))
        os.environ[RUN_DIR_ENV] = trainer.default_root_dir  # DDP workers started after this share the directory
        run = Path(trainer.default_root_dir)
        ckpts = run / "checkpoints"
        self._derived = ["trainer.default_root_dir"]  # never pinned in the saved config.yaml
        for group in ("checkpoint", "last_checkpoint"):
            if cfg[group].dirpath is None:
                cfg[group].dirpath = str(ckpts)
                self._derived.append(f"{group}.dirpath")
        if not child:
            check_writable(ckpts)
        if self.subcommand == "fit" and not child:
            dirs = {Path(cfg[g].dirpath) for g in ("checkpoint", "last_checkpoint")}
            check_outputs_free(run, dirs, ckpt_path, self._trained_on.run_id if self._trained_on else None)
        if trainer.strategy in STRATEGIES:  # G and D in separate DDP wrappers (lit_gan.distributed)
            trainer.strategy = STRATEGIES[trainer.strategy]

    def _parse_ckpt_path(self) -> None:
        """As Lightning's (the checkpoint's hyperparameters become the model's config), but the file is
        read safely, its hyperparameters may name only lit_gan's classes or the user's own
        (`lit_gan.trust`), and 0.1 hyperparameters are upgraded: an unreadable or untrusted file, or a
        checkpoint of another model class than --model, stops with one line."""
        command = self.config.get("subcommand")
        ckpt_path = self.config[command].get("ckpt_path") if command else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        try:
            checkpoint = legacy.read(ckpt_path, allowed=named_classes(self.config[command]))
        except ValueError as error:
            fail(error)
        hparams = dict(checkpoint["hyper_parameters"])
        loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
        step = loop.get("_batches_that_stepped", checkpoint.get("global_step", 0))  # the step metrics.csv logs
        self._resume_at = (int(checkpoint.get("epoch", 0)), int(step))
        self._trained_on = TrainedOn(ckpt_path, checkpoint.get("data"), hparams.get("image_shape"), hparams.get("num_classes"),
                                     checkpoint.get("run_id"))
        theirs, ours = hparams.pop("_class_path", None), self.config[command].model.class_path
        if theirs and ours and theirs != ours:
            fail(ValueError(f"{ckpt_path} holds a {theirs.rsplit('.', 1)[-1]} ({theirs}), not the --model "
                            f"{ours.rsplit('.', 1)[-1]}: resume it with --model {theirs.rsplit('.', 1)[-1]} (or its "
                            "run's config.yaml), or start a new run without --ckpt_path"))
        if hparams:
            given = self.config[command].model.get("init_args")
            ignored = _differences(given.as_dict() if given is not None else {}, hparams)
            if ignored:
                rank_zero_warn(f"--ckpt_path {ckpt_path}: the model is rebuilt with the checkpoint's settings; these "
                               f"differ from the given ones and are ignored: {'; '.join(ignored)}. To train with new "
                               "settings, start a new run with --weights_from instead")
            model = {"class_path": theirs or ours, "init_args": hparams}
            self.config = self.parser.parse_object({command: {"model": model}}, self.config)

    def _config(self) -> Any:
        return self.config.get(self.subcommand, self.config) if self.subcommand else self.config

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """Default loggers: W&B and a CSV file. `fit` writes (a resumed fit continues) `metrics.csv`
        in the run directory; validate, test and predict write `<command>-<time>/metrics.csv` beside it."""
        cfg = self._config()
        if cfg.trainer.get("barebones"):
            fail(ValueError("--trainer.barebones true forbids self.log, which the GAN loop uses for its losses every batch; "
                            "for a lean run use --trainer.logger false --trainer.enable_progress_bar false "
                            "--trainer.enable_model_summary false --evaluation.every_n_epochs 0"))
        if cfg.trainer.logger in (None, True):
            run = cfg.trainer.default_root_dir
            version = "" if self.subcommand == "fit" else f"{self.subcommand}-{time.strftime('%Y%m%d-%H%M%S')}"
            verbose = os.environ.get("LOCAL_RANK", "0") == "0"
            csv_logger = ResumableCSVLogger(run, name="", version=version, resume_at=self._resume_at)
            kwargs["logger"] = [wandb_logger(run, WandbSettings(**cfg.wandb), verbose), csv_logger]
        return super().instantiate_trainer(**kwargs)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[L.Callback]) -> L.Trainer:
        """`--trainer.enable_checkpointing false` leaves out lit_gan's checkpoints (last and best);
        a setting Lightning refuses (an accelerator this machine lacks, say) stops in one line."""
        if config.get("enable_checkpointing") is False:
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        config = {**config, "plugins": with_safe_io(config.get("plugins"))}  # every checkpoint atomic, read safely
        try:
            return super()._instantiate_trainer(config, callbacks)
        except MisconfigurationException as error:
            message = re.sub(r"<([\w.]+) object at 0x[0-9a-f]+>", lambda m: m.group(1).rsplit(".", 1)[-1], str(error))
            if "backend found" in message or "not available" in message:
                message += f"; this machine cannot run --trainer.accelerator {config.get('accelerator')}: use auto (what is here) or cpu"
            fail(ValueError(message))
            raise

    def after_instantiate_classes(self) -> None:
        """Checks the model (and the --ckpt_path checkpoint) against the data before anything starts
        (W&B, training)."""
        check = getattr(self.model, "check_data", None)
        weights_from = self._config().get("weights_from")
        try:
            if weights_from and self.subcommand != "fit":
                raise ValueError(f"--weights_from starts a fit from another run's weights; {self.subcommand} reads a "
                                 f"checkpoint with --ckpt_path {weights_from}")
            if weights_from:
                self.model.load_weights(weights_from)
            if self._trained_on is not None:
                self._trained_on.check(self.datamodule, resume=self.subcommand == "fit")
            if callable(check):
                check(self.datamodule)
        except USER_ERRORS as error:
            fail(error)
        for callback in self.trainer.callbacks:
            if isinstance(callback, SaveConfig):
                callback.unpinned = tuple(self._derived)
        super().after_instantiate_classes()

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except USER_ERRORS as error:
            fail(error)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except USER_ERRORS as error:
            if getattr(self.model, "batches_seen", 1):  # raised during training: keep the traceback
                raise TrainingError(f"training stopped at batch {getattr(self.model, 'batches_seen', '?')}") from error
            fail(error)  # bad data or settings found during setup, before the first batch

    def after_fit(self) -> None:
        if not self.trainer.is_global_zero:
            return
        # read from disk as well: under ddp_spawn the callbacks ran in the spawned processes, not here
        run = Path(self.trainer.default_root_dir)
        samples = next((c for c in self.trainer.callbacks if isinstance(c, SampleGrid)), None)
        grid = samples and (samples.last_path or max((run / samples.dirname).glob("*.png"), default=None))
        checkpoint = next((c for c in self.trainer.callbacks if isinstance(c, LastCheckpoint)), None)
        last = checkpoint and (checkpoint.best_model_path or next(Path(checkpoint.dirpath or run / "checkpoints").glob("last.ckpt"), None))
        print(f"\nRun directory: {shown(self.trainer.default_root_dir)}")
        print(f"Sample grid:   {shown(grid)}")
        print(f"Checkpoint:    {shown(last) if checkpoint is not None else 'none (--trainer.enable_checkpointing false)'}")

    def after_predict(self) -> None:
        """Says where `predict` wrote its images (`lit_gan.callbacks.PredictionWriter`)."""
        from lit_gan.callbacks import PredictionWriter

        if not self.trainer.is_global_zero:
            return
        folder = next((c.folder for c in self.trainer.callbacks if isinstance(c, PredictionWriter) and c.folder), None)
        if folder is not None:
            print(f"\nPredictions: {shown(folder)}")


def shown(path: str | Path | None) -> str:
    """One form for every path the summary prints: relative to the working directory when inside
    it, else absolute."""
    if not path:
        return "none"
    full, here = Path(path).resolve(), Path.cwd().resolve()
    return str(full.relative_to(here)) if full.is_relative_to(here) else str(full)


def _differences(given: dict[str, Any], saved: dict[str, Any], prefix: str = "") -> list[str]:
    """`key: given -> saved` for every setting both name with different values (nested dicts by key)."""
    out = []
    for key in sorted(set(given) & set(saved)):
        a, b = given[key], saved[key]
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif _plain(a) != _plain(b) and key not in ("image_shape", "num_classes"):  # linked from the data
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else canonical(value)


def explain(message: str) -> str:
    """The useful line of a jsonargparse error: the unknown class name, or the reason a class's
    arguments were refused (with the nearest valid name for a misspelt one), or our own messages."""
    unknown = re.search(r"dot import path string: ([\w.]+)", message)
    if unknown:
        return (
            f"unknown class {unknown.group(1)!r}; models: {', '.join(available(GAN))}; "
            f"datasets: {', '.join(available(ImageDataModule))} (or a full import path)"
        )
    lines = message.splitlines()
    for i, line in enumerate(lines):
        problem = re.match(r"(\s*)- Problem with given class_path '([\w.]+)':", line)
        if problem:
            indent = len(problem.group(1)) + 2
            body = list(itertools.takewhile(lambda r: not r.strip() or len(r) - len(r.lstrip()) > indent, lines[i + 1 :]))
            inner = re.search(r"class_path='([\w.]+)'", " ".join(body))  # a network's own options: name its class
            reason = " ".join(_useful(body))
            reason = re.sub(r"Type typing\.Callable\[.*?\] expects a function or a callable class: ", "", reason)
            if re.search(r"module 'lit_gan\.nets' has no attribute", reason):
                reason += f"; networks: {', '.join(n for n in nets.__all__ if isinstance(getattr(nets, n), type))}"
            where = inner.group(1) if inner else problem.group(2)
            return f"{where}: {reason}{suggestion(reason, where)}" if reason else line.strip()[2:]
    return " ".join(_useful(lines)) or message


_NOISE = ("Does not validate against any of the Union subtypes", "Subtypes:", "Errors:", "Given value type:",
          "Expected a <class 'NoneType'>", "Expected a path but")


def _useful(lines: Iterable[str]) -> list[str]:
    """jsonargparse's lines without its bookkeeping: union listings, the None alternative and the
    dump of the whole parsed namespace."""
    out = []
    for line in (raw.strip().removeprefix("- ") for raw in lines):
        line = re.sub(r"\.? ?(Got|Given) value: (Namespace|NestedArg)\(.*$", "", line).rstrip(".")
        if line and not line.startswith(_NOISE):
            out.append(line)
    return out


def suggestion(reason: str, class_path: str) -> str:
    """"; did you mean 'x'?" for an option `class_path` does not take: where a 0.2 setting moved
    (`d_steps`: `opt_d.steps`), or the nearest of its own arguments, its settings' fields
    (`latent.dim`) or its default networks' options (`generator.init_args.width`)."""
    option = re.search(r"Option '(\w+)' is not accepted", reason)
    cls = _import(class_path)
    field = re.search(r"unrecognized arguments: --(\w+)\.(\w+)", reason)  # a settings group's field (opt_d.stepz)
    if field and cls is not None:
        return _field_suggestion(cls, *field.groups())
    if not option or cls is None:
        return ""
    if isinstance(cls, type) and issubclass(cls, GAN) and option.group(1) in {**legacy.MOVED, "weights_from": None}:
        moved = legacy.MOVED.get(option.group(1))
        return f"; it moved: --model.init_args.{moved}" if moved else "; it moved: --weights_from (an option of fit)"
    params = [p for klass in cls.__mro__ if "__init__" in vars(klass) for p in inspect.signature(klass.__init__).parameters.values()]
    names = {p.name: p.name for p in params}  # its own arguments first, then its settings' fields and networks' options
    for param in params:
        for field in dataclasses.fields(param.default) if dataclasses.is_dataclass(param.default) else ():
            names.setdefault(field.name, f"{param.name}.{field.name}")
    for param in params:
        net = _import(param.default["class_path"]) if isinstance(param.default, dict) and "class_path" in param.default else None
        for option_name in inspect.signature(net.__init__).parameters if net else ():
            names.setdefault(option_name, f"{param.name}.init_args.{option_name}")
    close = difflib.get_close_matches(option.group(1), sorted(set(names) - {"self", "kwargs", "args"}), n=1)
    return f"; did you mean {names[close[0]]!r}?" if close else ""


def _field_suggestion(cls: type, group: str, field: str) -> str:
    """"; did you mean 'opt_d.steps'?" for a misspelt field of one of `cls`'s settings groups."""
    for klass in cls.__mro__:
        param = inspect.signature(klass.__init__).parameters.get(group) if "__init__" in vars(klass) else None
        if param is not None and dataclasses.is_dataclass(param.default):
            close = difflib.get_close_matches(field, [f.name for f in dataclasses.fields(param.default)], n=1)
            return f"; did you mean '{group}.{close[0]}'?" if close else ""
    return ""


def _import(class_path: str) -> Any:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def available(base: type) -> list[str]:
    """Names of the public subclasses of `base` that `--model` / `--data` accept."""
    module = lit_gan.models if base is GAN else lit_gan.data
    return [n for n in module.__all__ if isinstance(getattr(module, n), type) and issubclass(getattr(module, n), base) and not n.endswith("DataModule")]


def fail(error: BaseException) -> None:
    print(f"lit-gan: error: {explain(str(error))}", file=sys.stderr)
    raise SystemExit(2)


def disk_full(error: OSError) -> None:
    """A full disk (or quota) in one line, exit 1: its cause is not in the code. Other errors go on."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        raise error
    print(f"lit-gan: error: {error.strerror or error}", file=sys.stderr)
    raise SystemExit(1) from None


def stopped_by_sigterm(argv: list[str]) -> None:
    """Exit 143 with one line; after a fit, say how to resume."""
    message = "lit-gan: stopped by SIGTERM"
    if argv[:1] == ["fit"]:
        last = Path(os.environ.get(RUN_DIR_ENV, "runs/<run>")) / "checkpoints" / "last.ckpt"
        message += f"; resume with --ckpt_path {last}" if last.is_file() else "; no checkpoint was written yet"
    print(message, file=sys.stderr)
    raise SystemExit(128 + signal.SIGTERM) from None


@contextlib.contextmanager
def stoppable() -> Iterator[None]:
    """SIGTERM requests a stop (`lit_gan.progress`): Lightning's own handler joins this one during a
    Trainer's run, and every progress bar raises SIGTERMException at its next step. The process's
    previous handler is back afterwards."""
    progress.reset_stop()
    main_thread = threading.current_thread() is threading.main_thread()  # signals reach the main thread only
    previous = signal.signal(signal.SIGTERM, progress.request_stop) if main_thread else None
    try:
        yield
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        progress.reset_stop()  # the request was this command's (in-process callers run on)


def console() -> None:
    """The `lit-gan` console script (its return value would become the exit status)."""
    main()


TOOLS = {
    "demo": "lit_gan.demo",  # a local web page: samples by class and seed, interpolation, PNG downloads
    "export": "lit_gan.export",  # the generator as ONNX, TorchScript or safetensors, with a JSON sidecar
    "generate": "lit_gan.generate",  # images, interpolations and latent arithmetic from a checkpoint
    "prepare": "lit_gan.data.prepared",  # a dataset decoded once into memory-mapped arrays
}
"""`lit-gan <tool> ...`: commands beside Lightning's fit/validate/test/predict; each module has `main(argv)`.
A fixed table of lit_gan's own modules (nothing read from the command line is imported)."""


def main(args: list[str] | None = None, run: bool = True) -> GANCLI | None:
    """Entry point of `lit-gan` and `python -m lit_gan`: Lightning's subcommands, or one of `TOOLS`."""
    argv = sys.argv[1:] if args is None else args
    if argv[:1] and argv[0] in TOOLS:
        command = importlib.import_module(TOOLS[argv[0]]).main
        with stoppable():
            try:
                command(argv[1:])
            except (*USER_ERRORS, FileExistsError, ArgumentError) as error:
                fail(error)
            except OSError as error:
                disk_full(error)
            except SIGTERMException:  # at a batch: generate removed its partial file, prepare kept its finished blocks
                stopped_by_sigterm(argv)
        return None
    quiet()
    with stoppable():
        try:
            cli = GANCLI(
                None,  # any LightningModule taking image_shape and num_classes: the GANs, the metrics' Classifier
                ImageDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                auto_configure_optimizers=False,
                seed_everything_default=0,  # explicit in every run's config.yaml: runs are reproducible by default
                save_config_callback=SaveConfig,
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"exit_on_error": False, "allow_abbrev": False,  # a misspelt option is not an abbreviation
                               **{c: {"allow_abbrev": False} for c in ("fit", "validate", "test", "predict")}},
                args=args,
                run=run,
            )
            if progress.stop_requested():  # a SIGTERM that came after the last step that checks for one
                raise SIGTERMException
        except (*USER_ERRORS, FileExistsError, ArgumentError) as error:
            fail(error)
            raise
        except Diverged as error:  # one line, exit 1: a run that went wrong, not bad input
            print(f"lit-gan: error: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        except OSError as error:
            disk_full(error)
        except SIGTERMException:  # Lightning exits 0 on SIGTERM; schedulers and `&&` chains must see it
            stopped_by_sigterm(argv)
        finally:
            wandb = sys.modules.get("wandb")  # close this command's W&B run, also when it failed (flushes it)
            if wandb is not None and wandb.run is not None:
                wandb.finish(exit_code=0 if sys.exc_info()[0] is None else 1)
    return cli
