"""Run by test_metrics.py's DDP test (Lightning relaunches it for rank 1): a tiny GAN fit on 2 CPU processes with
the Evaluation callback and a ModelCheckpoint monitoring val/fid. Each rank prints what it logged.

Usage: python tests/callbacks/metrics_ddp_script.py OUT_DIR CACHE_DIR
"""

import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lit_gan.callbacks import Evaluation
from lit_gan.data import EmbeddedMNIST
from lit_gan.models import GAN
from lit_gan.nets import MLPDiscriminator, MLPGenerator, net


class Report(L.Callback):
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            print(f"RANK {trainer.global_rank} EPOCH {trainer.current_epoch} FID {float(trainer.callback_metrics['val/fid'])!r}",
                  flush=True)


if __name__ == "__main__":
    out, cache = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    evaluation = Evaluation(every_n_epochs=1, classifier_epochs=2, settings={"num_fake": 200, "num_real": 500, "kid_subsets": 5, "cache_dir": cache})
    checkpoint = ModelCheckpoint(dirpath=f"{out}/ckpt", monitor="val/fid", mode="min")
    trainer = L.Trainer(default_root_dir=out, accelerator="cpu", devices=2, strategy="gan_ddp",
                        max_epochs=2, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[evaluation, checkpoint, Report()])
    tiny = {"generator": net(MLPGenerator, width=8), "discriminator": net(MLPDiscriminator, width=8)}
    trainer.fit(GAN(**tiny, latent={"dim": 16}, ema={"decay": 0.9}), datamodule=EmbeddedMNIST(batch_size=16))
    if trainer.is_global_zero:
        print(f"BEST {float(checkpoint.best_model_score)!r}", flush=True)
