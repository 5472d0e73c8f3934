"""``lfp-surrogate predict``: voltages, currents and signals from a surrogate."""

from __future__ import annotations

HELP = (
    "predict vmem of every segment, imem, LFP, CSD, dipole, EEG and MEG with a "
    "trained surrogate (no NEURON needed) and write them to an HDF5 file"
)

#: Options that draw the input (dest -> flag), refused together with --inputs.
_DRAW = {
    "duration": "--duration",
    "seed": "--seed",
    "n_sims": "--n-sims",
    "exc_rate": "--exc-rate",
    "inh_rate": "--inh-rate",
    "sync_rate": "--sync-rate",
    "sync_fraction": "--sync-fraction",
    "regions": "--regions",
}


def add_arguments(parser):
    """Add this subcommand's options."""
    from ..inputs import SYNAPTIC_REGIONS, InputStatistics
    from ._common import add_config_argument, add_forward_arguments

    stats = InputStatistics()
    parser.add_argument(
        "--model",
        default="l5_ttpc1",
        metavar="NAME|DIR",
        help="a shipped model's name or a folder written by `lfp-surrogate "
        "train` (default: l5_ttpc1, the shipped model of the L5 pyramidal cell)",
    )
    parser.add_argument(
        "--inputs",
        metavar="FILE.h5",
        help="predict the inputs stored in a dataset shard or a prediction file "
        "(instead of --duration and --seed)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="MS",
        help="draw inputs of this duration (ms; a whole number of the model's "
        "bins); needs --seed",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="root seed of the drawn inputs (input i as simulation i of "
        "`lfp-surrogate simulate --seed S`)",
    )
    parser.add_argument(
        "--n-sims",
        type=int,
        default=None,
        metavar="N",
        help="inputs to draw (default: 1)",
    )
    parser.add_argument(
        "--exc-rate",
        type=float,
        default=None,
        metavar="HZ_PER_UM",
        help=f"drawn excitatory rate per µm of dendrite (Hz/µm; default "
        f"{stats.exc_rate:g})",
    )
    parser.add_argument(
        "--inh-rate",
        type=float,
        default=None,
        metavar="HZ_PER_UM",
        help=f"drawn inhibitory rate per µm of dendrite (Hz/µm; default "
        f"{stats.inh_rate:g})",
    )
    parser.add_argument(
        "--sync-rate",
        type=float,
        default=None,
        metavar="HZ",
        help=f"rate of synchronous excitatory volleys (Hz; default "
        f"{stats.sync_rate:g}: none)",
    )
    parser.add_argument(
        "--sync-fraction",
        type=float,
        default=None,
        metavar="P",
        help=f"probability (0 to 1) that an excitatory synapse joins a volley "
        f"(default {stats.sync_fraction:g})",
    )
    parser.add_argument(
        "--regions",
        default=None,
        metavar="R1,R2,...",
        help=f"comma-separated regions that receive drawn input, of "
        f"{', '.join(SYNAPTIC_REGIONS)} (default: all of them)",
    )
    add_forward_arguments(parser)
    parser.add_argument(
        "--device",
        default="cpu",
        metavar="cpu|cuda",
        help="where the network, currents and forward models run (default cpu; "
        "cuda:N for a given GPU)",
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=1000,
        metavar="BINS",
        help="bins per streaming step (bounds memory; default 1000)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=8,
        metavar="N",
        help="inputs predicted side by side (default 8)",
    )
    parser.add_argument(
        "--no-imem",
        action="store_true",
        help="do not store the transmembrane currents (they still give the signals)",
    )
    parser.add_argument(
        "--no-input-check",
        action="store_true",
        help="do not warn about inputs unlike the model's training inputs",
    )
    parser.add_argument(
        "--out", required=True, metavar="FILE.h5", help="prediction file to write"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace OUT (atomically) if it exists"
    )
    add_config_argument(parser)


def _inputs_from_args(args) -> dict:
    """The ``inputs``/``duration``/``seed``/``n_sims``/``stats`` of predict()."""
    given = [flag for dest, flag in _DRAW.items() if getattr(args, dest) is not None]
    if args.inputs is not None:
        if given:
            raise ValueError(
                f"--inputs and {'/'.join(given)} exclude each other: give --inputs "
                f"FILE.h5 to predict stored inputs, or --duration and --seed to draw "
                f"new ones"
            )
        return dict(inputs=args.inputs)
    if args.duration is None or args.seed is None:
        missing = "--seed" if args.duration is not None else "--duration"
        if not given:
            raise ValueError(
                "no input: give --inputs FILE.h5 (a dataset shard or a prediction "
                "file), or --duration and --seed to draw inputs (e.g. --duration "
                "2000 --seed 1)"
            )
        raise ValueError(
            f"{missing} is required to draw inputs (with {'/'.join(given)}), or "
            f"give --inputs FILE.h5 instead"
        )
    from ..inputs import InputStatistics

    changes = {
        dest: getattr(args, dest)
        for dest in ("exc_rate", "inh_rate", "sync_rate", "sync_fraction")
        if getattr(args, dest) is not None
    }
    if args.regions is not None:
        regions = args.regions  # a list when it comes from --config
        if isinstance(regions, str):
            regions = regions.split(",")
        changes["regions"] = tuple(str(r).strip() for r in regions)
    return dict(
        duration=args.duration,
        seed=args.seed,
        n_sims=1 if args.n_sims is None else args.n_sims,
        stats=InputStatistics(**changes) if changes else None,
    )


def _summary(path) -> tuple[int, float, list]:
    """Simulations, duration (ms) and stored quantities of a prediction file."""
    import h5py

    kinds = ("vmem", "imem", "lfp", "csd", "dipole", "eeg", "meg")
    names = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and name.split("/")[0] in kinds:
            names.append(name)

    with h5py.File(path, "r") as f:
        f.visititems(visit)
        n_sims, duration = int(f["vmem"].shape[0]), float(f.attrs["duration"])
    return n_sims, duration, sorted(names, key=lambda n: kinds.index(n.split("/")[0]))


def run(args) -> int:
    """Predict and write the file."""
    import argparse

    from ..predict import predict
    from ._common import (
        apply_config,
        flag_names,
        forward_config_from_args,
        report,
        with_flag_names,
    )

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    apply_config(args, {a.dest: a.default for a in parser._actions})
    # every setting is checked (and named by its flag) before OUT is written
    with with_flag_names(flag_names(parser)):
        source = _inputs_from_args(args)
        forward = forward_config_from_args(args)
        if str(args.device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise RuntimeError(
                    f"--device {args.device}: torch sees no CUDA device; use "
                    f"--device cpu"
                )
        # an out-of-distribution input warns through Python's warnings (stderr)
        out = predict(
            args.model,
            **source,
            forward=forward or None,
            out=args.out,
            force=args.force,
            with_imem=not args.no_imem,
            device=args.device,
            chunk=args.chunk,
            batch=args.batch,
            check_inputs=not args.no_input_check,
        )
    n_sims, duration, signals = _summary(out)
    report(
        f"prediction written to {out}: {n_sims} input(s) of {duration:g} ms; "
        f"{', '.join(signals)}"
    )
    return 0
