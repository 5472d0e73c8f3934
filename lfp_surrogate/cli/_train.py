"""``lfp-surrogate train``: train a surrogate on a dataset."""

from __future__ import annotations

HELP = (
    "train a surrogate (mh, mmoe or mmoeex) or the linear baseline (linear) on a "
    "dataset and save it"
)


def add_arguments(parser):
    """Add this subcommand's options."""
    from ..train import TrainConfig
    from ._common import add_config_argument

    cfg = TrainConfig()
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument(
        "--arch",
        default="mh",
        choices=("mh", "mmoe", "mmoeex", "linear"),
        help="head, or 'linear': the linear baseline (one causal convolution)",
    )
    parser.add_argument("--out", required=True, help="training folder")
    parser.add_argument("--window", type=int, default=cfg.window, help="bins")
    parser.add_argument("--batch-size", type=int, default=cfg.batch_size)
    parser.add_argument("--lr", type=float, default=cfg.lr, help="learning rate")
    parser.add_argument("--max-epochs", type=int, default=cfg.max_epochs)
    parser.add_argument(
        "--max-minutes", type=float, default=cfg.max_minutes, help="time budget"
    )
    parser.add_argument("--seed", type=int, default=cfg.seed)
    parser.add_argument(
        "--num-workers",
        type=int,
        default=cfg.num_workers,
        help="data-loader worker processes (0: read in the training process)",
    )
    parser.add_argument(
        "--device",
        "--accelerator",
        dest="device",
        default="cpu",
        choices=("cpu", "cuda", "gpu", "auto"),
        help="kind of device (Lightning's accelerator)",
    )
    parser.add_argument(
        "--devices",
        default=str(cfg.devices),
        help="devices per node: a count, 'auto' or indices '0,1'; on the CPU a "
        "count above 1 runs that many processes (with --strategy ddp)",
    )
    parser.add_argument(
        "--num-nodes",
        type=int,
        default=cfg.num_nodes,
        help="machines taking part (SLURM or MASTER_ADDR/NODE_RANK describe them)",
    )
    parser.add_argument(
        "--strategy",
        default=cfg.strategy,
        help="Lightning strategy: auto, ddp (one process per device), ddp_fork",
    )
    parser.add_argument(
        "--width", type=int, default=None, help="channels of the backbone blocks"
    )
    parser.add_argument(
        "--local-kernel",
        type=int,
        default=None,
        help="taps (bins) of each segment's filter of its own input; 0: none",
    )
    parser.add_argument(
        "--loss",
        default="full",
        choices=("full", "vmem", "vmem+imem"),
        help="loss terms: voltages only, + derived currents, or + dipole/LFP too",
    )
    parser.add_argument("--resume", action="store_true", help="continue training")
    parser.add_argument("--force", action="store_true", help="replace a model")
    add_config_argument(parser)


def run(args) -> int:
    """Train and save."""
    import argparse

    from ..train import TrainConfig, train
    from ._common import apply_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    apply_config(args, {a.dest: a.default for a in parser._actions})
    weights = {}
    if args.loss in ("vmem", "vmem+imem"):
        weights.update(w_dipole=0.0, w_lfp=0.0)
    if args.loss == "vmem":
        weights.update(w_imem=0.0)
    config = TrainConfig(
        window=args.window,
        batch_size=args.batch_size,
        lr=args.lr,
        max_epochs=args.max_epochs,
        max_minutes=args.max_minutes,
        seed=args.seed,
        num_workers=args.num_workers,
        accelerator=args.device,
        devices=_devices(args.devices),
        num_nodes=args.num_nodes,
        strategy=args.strategy,
        **weights,
    )
    overrides = {} if args.width is None else {"widths": args.width}
    if args.local_kernel is not None:
        overrides["local_kernel"] = args.local_kernel
    out = train(
        args.data,
        args.out,
        arch=args.arch,
        model_overrides=overrides,
        config=config,
        resume=args.resume,
        force=args.force,
    )
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank == 0:  # under DDP, once (the first process saves)
        print(f"model saved to {out}")
    return 0


def _devices(text):
    """``--devices``: a count as an int, anything else as Lightning reads it."""
    text = str(text).strip()
    return int(text) if text.isdigit() else text
