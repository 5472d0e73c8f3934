"""Training with PyTorch Lightning: losses on voltages and what they imply."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .._logging import logger, progress_disabled, use_log_level
from ._config import TrainConfig
from ._saved import save_model

#: Files of a training folder.
CHECKPOINTS = "checkpoints"


def _lightning():
    import lightning.pytorch as pl

    return pl


def make_module(
    model, imem_operator, lfp_matrix, scales: dict, config: TrainConfig, burn: int
):
    """The LightningModule training ``model``.

    Parameters
    ----------
    model : Surrogate
    imem_operator : ImemOperator
        Derives currents from predicted and true voltages.
    lfp_matrix : ndarray, shape (n_contacts, n_seg)
        LFP of the training probe (mV per nA).
    scales : dict
        Per-channel standard deviations of the targets: ``imem`` (n_seg,) nA,
        ``dipole`` (3,) nA·µm, ``lfp`` (n_contacts,) mV.
    config : TrainConfig
    burn : int
        Leading bins of each window left out of the losses (no history).
    """
    import torch
    import torch.nn.functional as F

    pl = _lightning()

    class SurrogateModule(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model
            self.op = imem_operator
            self.register_buffer(
                "lfp_matrix", torch.as_tensor(np.array(lfp_matrix), dtype=torch.float32)
            )
            self.register_buffer(
                "dipole_matrix",
                torch.as_tensor(np.array(scales["dipole_matrix"]), dtype=torch.float32),
            )
            for key in ("imem", "dipole", "lfp"):
                self.register_buffer(
                    f"{key}_scale",
                    torch.as_tensor(np.array(scales[key]), dtype=torch.float32),
                )

        def losses(self, batch):
            counts, vmem, spike = batch["counts"], batch["vmem"], batch["spike"]
            out = self.model(counts)
            sl = slice(burn, None)
            pred, true = out.vmem[..., sl], vmem[..., sl]
            scale = self.model.vmem_scale[:, None]
            loss = {"vmem": F.mse_loss(pred / scale, true / scale)}
            # currents follow exactly from the voltages (a graph Laplacian:
            # it amplifies voltage errors that differ between neighbours)
            i_pred = self.op.apply(out.vmem)[..., sl]
            i_true = self.op.apply(vmem)[..., sl]
            s = self.imem_scale[:, None]
            loss["imem"] = F.mse_loss(i_pred / s, i_true / s)
            p_pred = torch.matmul(self.dipole_matrix, i_pred)
            p_true = torch.matmul(self.dipole_matrix, i_true)
            s = self.dipole_scale[:, None]
            loss["dipole"] = F.mse_loss(p_pred / s, p_true / s)
            l_pred = torch.matmul(self.lfp_matrix, i_pred)
            l_true = torch.matmul(self.lfp_matrix, i_true)
            s = self.lfp_scale[:, None]
            loss["lfp"] = F.mse_loss(l_pred / s, l_true / s)
            loss["spike"] = F.binary_cross_entropy_with_logits(
                out.spike_logit[..., sl], spike[..., sl]
            )
            aux = sum(out.aux_losses.values()) if out.aux_losses else vmem.new_zeros(())
            loss["aux"] = aux
            total = (
                config.w_vmem * loss["vmem"]
                + config.w_imem * loss["imem"]
                + config.w_dipole * loss["dipole"]
                + config.w_lfp * loss["lfp"]
                + config.w_spike * loss["spike"]
                + config.w_aux * loss["aux"]
            )
            return total, loss

        def training_step(self, batch, batch_idx):
            total, parts = self.losses(batch)
            self.log("train_loss", total, prog_bar=True, batch_size=len(batch["vmem"]))
            for key, value in parts.items():
                self.log(f"train_{key}", value, batch_size=len(batch["vmem"]))
            return total

        def validation_step(self, batch, batch_idx):
            total, parts = self.losses(batch)
            n = len(batch["vmem"])
            # averaged over the processes under DDP (no-op on one)
            self.log("val_loss", total, prog_bar=True, batch_size=n, sync_dist=True)
            for key, value in parts.items():
                self.log(f"val_{key}", value, batch_size=n, sync_dist=True)

        def configure_optimizers(self):
            opt = torch.optim.AdamW(
                self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
            )
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, factor=0.5, patience=2
            )
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"},
            }

    return SurrogateModule()


def _collate(items):
    import torch

    return {
        key: torch.as_tensor(np.stack([it[key] for it in items])) for key in items[0]
    }


def _split(shards, val_fraction: float):
    """Whole simulations (shards) for validation, the rest for training."""
    n_val = max(1, int(round(len(shards) * val_fraction)))
    if len(shards) - n_val < 1:
        raise ValueError(
            f"data holds {len(shards)} shard(s): need at least 2 to keep whole "
            f"simulations apart for validation"
        )
    return shards[:-n_val], shards[-n_val:]


def _target_scales(
    train_set, operator, lfp_matrix, dipole_matrix, n_windows=64, seed=0
):
    """Per-channel standard deviations of imem, dipole and LFP targets."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(train_set))[:n_windows]
    imem = np.concatenate(
        [operator.apply(train_set[int(i)]["vmem"].astype(np.float64)) for i in pick],
        axis=1,
    )
    std = lambda a: np.maximum(a.std(axis=1), 1e-12 + 1e-6 * np.abs(a).max())  # noqa: E731
    return dict(
        imem=std(imem),
        dipole=std(dipole_matrix @ imem),
        lfp=std(lfp_matrix @ imem),
        dipole_matrix=dipole_matrix,
    )


def train(
    data,
    out,
    *,
    arch: str = "mh",
    model_overrides: dict | None = None,
    config: TrainConfig | None = None,
    resume: bool = False,
    force: bool = False,
    verbose=None,
) -> Path:
    """Train a surrogate on a dataset and save the finished model.

    Parameters
    ----------
    data : path-like
        Dataset folder (complete shards are used; an interrupted generation
        can be trained on as it stands).
    out : path-like
        Training folder: ``checkpoints/`` (to resume), ``logs/`` (CSV) and
        the finished model (``model.safetensors`` + ``model.json``).
    arch : str
        ``"mh"``, ``"mmoe"`` or ``"mmoeex"``.
    model_overrides : dict | None
        Fields of :class:`~lfp_surrogate.models.ModelConfig`.
    config : TrainConfig | None
        Training settings.
    resume : bool
        Continue from ``out/checkpoints/last.ckpt``.
    force : bool
        Replace a finished model in ``out``.
    verbose : bool | str | int | None
        Logging level for this call.

    Returns
    -------
    out : Path
        The folder holding the finished model.
    """
    import torch

    pl = _lightning()
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader, WeightedRandomSampler

    from ..cli._common import parse_probe
    from ..data import WindowDataset, open_shard, read_cell, vmem_normalisation
    from ..forward import DipoleOperator, LFPOperator, ProbePlacement
    from ..models import ModelConfig, build_model

    config = TrainConfig() if config is None else config
    with use_log_level(verbose):
        t0 = time.perf_counter()
        data, out = Path(data), Path(out)
        shards = sorted(data.glob("shard-*.h5"))
        if not shards:
            raise FileNotFoundError(f"data: no shards (shard-*.h5) in {data}")
        if (out / "model.json").exists() and not (force or resume):
            raise FileExistsError(
                f"out ({out}) already holds a finished model; pass --force to "
                f"replace it or --resume to continue training"
            )
        out.mkdir(parents=True, exist_ok=True)
        train_shards, val_shards = _split(shards, config.val_fraction)
        with open_shard(shards[0]) as f:
            geometry, operator = read_cell(f, source=str(shards[0]))
            cell_name = str(f.attrs["cell"])
        # tasks: the regions present, renumbered 0..n_tasks-1
        codes = np.unique(geometry.region)
        task_of_seg = np.searchsorted(codes, geometry.region)
        overrides = dict(model_overrides or {})
        overrides.setdefault("task_of_seg", tuple(int(t) for t in task_of_seg))
        mcfg = ModelConfig(n_seg=geometry.n_seg, arch=arch, **overrides)
        pl.seed_everything(config.seed, workers=True, verbose=False)
        model = build_model(mcfg)
        center, scale = vmem_normalisation(train_shards, seed=config.seed)
        model.set_normalization(center, scale)
        burn = model.receptive_field - 1
        if config.window <= burn:
            raise ValueError(
                f"window ({config.window} bins) must exceed the receptive field "
                f"({model.receptive_field} bins) so that some bins have history"
            )
        train_set = WindowDataset(
            train_shards, config.window, stride=config.window // 2
        )
        val_set = WindowDataset(val_shards, config.window)
        lfp_op = LFPOperator(
            geometry, ProbePlacement(**parse_probe(config.lfp_probe)), inside="ignore"
        )
        dipole = DipoleOperator(geometry).matrix
        scales = _target_scales(
            train_set, operator, lfp_op.matrix, dipole, seed=config.seed
        )
        logger.info(
            "Training %s on %s: %d train / %d validation windows of %d bins "
            "(%d + %d simulations, %d segments), %d parameters, receptive field "
            "%g ms",
            arch,
            data,
            len(train_set),
            len(val_set),
            config.window,
            len(train_set.sims),
            len(val_set.sims),
            geometry.n_seg,
            model.n_parameters,
            model.receptive_field_ms,
        )
        module = make_module(model, operator, lfp_op.matrix, scales, config, burn)
        gen = torch.Generator().manual_seed(config.seed)
        sampler = WeightedRandomSampler(
            train_set.spike_weights(config.spike_boost),
            len(train_set),
            replacement=True,
            generator=gen,
        )
        loader = DataLoader(
            train_set,
            batch_size=config.batch_size,
            sampler=sampler,
            collate_fn=_collate,
            num_workers=config.num_workers,
            persistent_workers=config.num_workers > 0,
        )
        val_loader = DataLoader(
            val_set,
            batch_size=config.batch_size,
            collate_fn=_collate,
            num_workers=config.num_workers,
        )
        ckpt_dir = out / CHECKPOINTS
        checkpoint = ModelCheckpoint(
            dirpath=ckpt_dir,
            monitor="val_loss",
            save_last=True,
            save_top_k=1,
            filename="best",
        )
        trainer = pl.Trainer(
            max_epochs=config.max_epochs,
            max_time=(
                {"minutes": config.max_minutes} if config.max_minutes > 0 else None
            ),
            accelerator="gpu" if config.accelerator == "cuda" else config.accelerator,
            devices=config.devices,
            num_nodes=config.num_nodes,
            strategy=config.strategy,
            callbacks=[checkpoint, EarlyStopping("val_loss", patience=config.patience)],
            logger=CSVLogger(out, name="logs"),
            enable_progress_bar=not progress_disabled(),
            enable_model_summary=False,
            log_every_n_steps=5,
            deterministic=False,
        )
        last = ckpt_dir / "last.ckpt"
        trainer.fit(
            module,
            loader,
            val_loader,
            ckpt_path=str(last) if resume and last.exists() else None,
        )
        if not trainer.is_global_zero:
            # under DDP only the first process saves the model
            logger.info(
                "Training process %d of %d done; process 0 saves the model",
                trainer.global_rank,
                trainer.world_size,
            )
            return out
        best = checkpoint.best_model_path
        if best:
            # trainer checkpoints only resume; weights_only keeps them data
            state = torch.load(best, map_location="cpu", weights_only=True)
            module.load_state_dict(state["state_dict"])
        model.eval()
        hashes = train_set.input_hashes() + val_set.input_hashes()
        card = dict(
            training=dict(
                data=str(data),
                cell=cell_name,
                n_train_sims=len(train_set.sims),
                n_val_sims=len(val_set.sims),
                simulated_seconds=float(len(hashes) * _duration_s(shards[0])),
                train_config=config.to_dict(),
                epochs=int(trainer.current_epoch),
                best_val_loss=float(checkpoint.best_model_score or float("nan")),
                wall_minutes=(time.perf_counter() - t0) / 60,
                hardware=_hardware(config),
                input_statistics=_input_statistics(shards[0]),
            ),
            training_input_hashes=hashes,
            attribution=(
                "Cell model: Blue Brain Project L5_TTPC1_cADpyr232_1, CC BY-NC-SA "
                "4.0 (Markram et al. 2015, doi:10.1016/j.cell.2015.09.029), via "
                "the mearec package"
            ),
        )
        save_model(out, model, geometry, operator, card, overwrite=True)
        logger.info(
            "Trained in %.1f min; model saved to %s",
            (time.perf_counter() - t0) / 60,
            out,
        )
        return out


def _duration_s(shard) -> float:
    from ..data import open_shard

    with open_shard(shard) as f:
        return float(f.attrs["duration"]) * 1e-3


def _input_statistics(shard) -> dict:
    from ..data import open_shard

    with open_shard(shard) as f:
        return json.loads(f.attrs["input_statistics"])


def _hardware(config) -> str:
    import os
    import platform

    import torch

    if config.accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        text = torch.cuda.get_device_name(0)
    else:
        text = (
            f"{platform.machine()} CPU, {os.cpu_count()} cores, torch "
            f"{torch.__version__}"
        )
    if config.strategy != "auto" or config.num_nodes > 1 or config.devices != 1:
        text += (
            f"; strategy {config.strategy}, devices {config.devices}, "
            f"{config.num_nodes} node(s)"
        )
    return text
