"""The forward stage's configuration and its top-level object."""

from __future__ import annotations

import dataclasses
import numbers
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .._io import atomic_path
from .._logging import logger, use_log_level
from .._validation import check_option, check_path, check_positive, check_type
from ._eeg import NYHEAD_LOCATIONS, EEGElectrodes, EEGOperator
from ._heads import HeadPlacement, check_head_name, load_head_model
from ._lfp import CSDOperator, DipoleOperator, LFPOperator, check_method, check_sigma
from ._meg import MEG_MODELS, MEGOperator, MEGSensors
from ._placement import INSIDE_POLICIES, ProbePlacement
from ._probes import load_probe

#: Version of the YAML layout written by :meth:`ForwardConfig.to_yaml`.
CONFIG_VERSION = 1


def _placements(probes) -> tuple:
    if isinstance(probes, (str, os.PathLike, Mapping, ProbePlacement)):
        probes = [probes]  # one probe, not a sequence of them
    out = []
    for p in probes:
        if isinstance(p, ProbePlacement):
            out.append(p)
        elif isinstance(p, (str, os.PathLike)):
            out.append(ProbePlacement(probe=os.fspath(p)))
        elif isinstance(p, Mapping):
            out.append(ProbePlacement.from_dict(p))
        else:
            raise TypeError(
                f"probes must hold ProbePlacement, probe names or mappings, got "
                f"{type(p).__name__}"
            )
    return tuple(out)


def _names(value, name: str) -> tuple:
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    out = []
    for v in value:
        check_type(v, (str, os.PathLike), name, "names (str)")
        out.append(os.fspath(v))
    return tuple(out)


@dataclass(frozen=True)
class ForwardConfig:
    """Configuration of the forward stage (round-trips to YAML).

    Parameters
    ----------
    probes : tuple of ProbePlacement
        Placed probes; a probe name or a mapping is turned into one.
    sigma : float | tuple of 3 float
        Extracellular conductivity (S/m) for LFP, scalar or (σx, σy, σz).
    method : str
        Segment source model for LFP: ``linesource``, ``pointsource`` or
        ``root_as_point`` (alias ``soma_as_point``).
    inside : {"warn", "raise", "ignore"}
        What to do when a contact lies inside the membrane.
    csd_radius : float
        Radius of the CSD cylinders around laminar probes (µm).
    heads : tuple of str
        EEG head models by name (``head_models/``; an unknown name is refused
        at once) or YAML path (read when the forward model is built).
    head_placement : HeadPlacement
        The cell's place in the head, for EEG and MEG.
    eeg_montage : str
        MNE montage for the spherical heads' electrodes when none are given
        (needs MNE).
    eeg_reference : str | None
        ``"average"``, ``"none"`` or an electrode name.
    nyhead_path : str | None
        Path of ``sa_nyhead.mat`` (default :func:`nyhead_default_path`).
    nyhead_location : str | tuple of 3 float
        Cortex location in the New York head (name or mm).
    meg : tuple of str
        MEG models: ``"spherical"``, ``"infinite"``.
    meg_n_sensors : int
        Number of magnetometers when none are given.
    meg_radius : float
        Radius of the sensor sphere (µm).
    meg_head_model : str
        Head model whose brain radius places the cell for MEG.
    """

    probes: tuple = ()
    sigma: float | tuple = 0.3
    method: str = "linesource"
    inside: str = "warn"
    csd_radius: float = 100.0
    heads: tuple = ()
    head_placement: HeadPlacement = field(default_factory=HeadPlacement)
    eeg_montage: str = "standard_1020"
    eeg_reference: str | None = "average"
    nyhead_path: str | None = None
    nyhead_location: str | tuple = "motorsensory_cortex"
    meg: tuple = ()
    meg_n_sensors: int = 100
    meg_radius: float = 110000.0
    meg_head_model: str = "four_sphere_lfpy_default"

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "probes", _placements(self.probes))
        labels = [p.label for p in self.probes]
        dup = sorted({lab for lab in labels if labels.count(lab) > 1})
        if dup:
            raise ValueError(
                f"probes must have distinct labels, got {dup} more than once; give "
                f"each placement its own label"
            )
        sigma = check_sigma(self.sigma)
        set_(self, "sigma", sigma if np.ndim(sigma) == 0 else tuple(sigma.tolist()))
        set_(self, "method", check_method(self.method))
        check_option(self.inside, INSIDE_POLICIES, "inside")
        check_positive(self.csd_radius, "csd_radius")
        set_(self, "csd_radius", float(self.csd_radius))
        set_(self, "heads", _names(self.heads, "heads"))
        for head in self.heads:
            # a name is checked now, a file when it is loaded
            check_head_name(head, "heads")
        if isinstance(self.head_placement, Mapping):
            set_(
                self,
                "head_placement",
                HeadPlacement.from_dict(dict(self.head_placement)),
            )
        check_type(self.head_placement, HeadPlacement, "head_placement")
        check_type(self.eeg_montage, str, "eeg_montage")
        if self.eeg_reference is not None:
            check_type(self.eeg_reference, str, "eeg_reference")
        if self.nyhead_path is not None:
            check_type(self.nyhead_path, (str, os.PathLike), "nyhead_path")
            set_(self, "nyhead_path", os.fspath(self.nyhead_path))
        loc = self.nyhead_location
        if isinstance(loc, str):
            check_option(
                loc, NYHEAD_LOCATIONS, "nyhead_location", "Or give 3 numbers (mm)"
            )
        else:
            arr = np.asarray(loc, dtype=float).reshape(-1)
            if arr.shape != (3,):
                raise ValueError(f"nyhead_location must be 3 numbers (mm), got {loc!r}")
            set_(self, "nyhead_location", tuple(arr.tolist()))
        meg = _names(self.meg, "meg")
        for m in meg:
            check_option(m, MEG_MODELS, "meg")
        set_(self, "meg", meg)
        check_positive(self.meg_n_sensors, "meg_n_sensors", integer=True)
        check_positive(self.meg_radius, "meg_radius")
        set_(self, "meg_radius", float(self.meg_radius))
        check_type(self.meg_head_model, str, "meg_head_model")
        check_head_name(self.meg_head_model, "meg_head_model")

    # -- YAML --------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain dict (lists, numbers, strings) for YAML."""
        out = {"config_version": CONFIG_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "probes":
                value = [p.to_dict() for p in value]
            elif f.name == "head_placement":
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> ForwardConfig:
        """Build from :meth:`to_dict`; absent keys take their defaults."""
        check_type(data, Mapping, "forward config", "a mapping")
        data = dict(data)
        version = data.pop("config_version", CONFIG_VERSION)
        if not isinstance(version, numbers.Integral) or version > CONFIG_VERSION:
            raise ValueError(
                f"config_version must be an integer <= {CONFIG_VERSION}, got "
                f"{version!r}; upgrade lfp_surrogate to read it"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"forward config has unknown key(s) {unknown}; allowed: {sorted(names)}"
            )
        if isinstance(data.get("sigma"), list):
            data["sigma"] = tuple(data["sigma"])
        if isinstance(data.get("head_placement"), Mapping):
            data["head_placement"] = HeadPlacement.from_dict(
                dict(data["head_placement"])
            )
        return cls(**data)

    def to_yaml(self, path, *, overwrite: bool = False) -> Path:
        """Write the configuration to a YAML file atomically.

        Parameters
        ----------
        path : str | os.PathLike
        overwrite : bool
            Replace an existing file (otherwise FileExistsError).

        Returns
        -------
        Path
        """
        path = check_path(path, "path", must_exist=False)
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"path: {path} exists; pass overwrite=True to replace it"
            )
        with atomic_path(path, suffix=".yaml") as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                yaml.safe_dump(self.to_dict(), f, sort_keys=False, allow_unicode=True)
        return path

    @classmethod
    def from_yaml(cls, path) -> ForwardConfig:
        """Read a configuration written by :meth:`to_yaml`."""
        path = check_path(path, "path")
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ValueError(f"forward config {path}: not valid YAML ({err})") from None
        try:
            return cls.from_dict(data if data is not None else {})
        except (TypeError, ValueError) as err:
            raise type(err)(f"forward config {path}: {err}") from None


class ForwardModel:
    """All forward models of one cell: LFP, CSD, dipole, EEG and MEG.

    Every measurement is a matrix computed once here (float64, from LFPykit)
    and applied to transmembrane currents in numpy or batched torch, on the
    device of the input and differentiably.

    Parameters
    ----------
    geometry : CellGeometry
        The cell in its own frame (soma at the origin, apical axis +y).
    config : ForwardConfig | None
        What to build; keyword arguments below override its fields.
    electrodes : EEGElectrodes | ndarray, shape (n_electrodes, 3) | None
        EEG electrodes on the scalp (µm) for the spherical heads; default
        ``config.eeg_montage`` from MNE.
    meg_sensors : MEGSensors | None
        Default ``config.meg_n_sensors`` on a sphere of ``config.meg_radius``.
    verbose : bool | str | int | None
        Logging level for this call.
    **overrides
        Fields of :class:`ForwardConfig` (e.g. ``probes=["Laminar-16-100"]``,
        ``heads=["four_sphere_lfpy_default"]``, ``meg=["spherical"]``).

    Attributes
    ----------
    lfp_operators : dict of str to LFPOperator
        By probe label.
    csd_operators : dict of str to CSDOperator
        For the laminar probes, by label.
    dipole_operator : DipoleOperator
    eeg_operators : dict of str to EEGOperator
        By head-model name.
    meg_operators : dict of str to MEGOperator
        By MEG model.

    Examples
    --------
    >>> fwd = ForwardModel(geometry, probes=[ProbePlacement(
    ...     "Laminar-16-100", position=(30, 300, 0))],
    ...     heads=["four_sphere_lfpy_default"], meg=["spherical"])
    >>> lfp = fwd.lfp(imem)["Laminar-16-100"]  # (n_contacts, n_times) mV
    """

    def __init__(
        self,
        geometry,
        config: ForwardConfig | None = None,
        *,
        electrodes=None,
        meg_sensors: MEGSensors | None = None,
        verbose=None,
        **overrides,
    ):
        with use_log_level(verbose):
            t0 = time.perf_counter()
            config = ForwardConfig() if config is None else config
            check_type(config, ForwardConfig, "config")
            if overrides:
                config = dataclasses.replace(config, **overrides)
            self.config = config
            self.geometry = geometry
            logger.info(
                "Building forward models for %s (%d segments): %d probe(s), "
                "head(s) %s, MEG %s",
                getattr(geometry, "name", "cell"),
                geometry.n_seg,
                len(config.probes),
                list(config.heads) or "none",
                list(config.meg) or "none",
            )
            self.dipole_operator = DipoleOperator(geometry)
            self.lfp_operators = {}
            self.csd_operators = {}
            for placement in config.probes:
                probe = load_probe(placement.probe)
                self.lfp_operators[placement.label] = LFPOperator(
                    geometry,
                    placement,
                    sigma=config.sigma,
                    method=config.method,
                    inside=config.inside,
                    probe=probe,
                )
                try:
                    self.csd_operators[placement.label] = CSDOperator(
                        geometry, placement, radius=config.csd_radius, probe=probe
                    )
                except NotImplementedError as err:
                    logger.debug("no CSD for %s: %s", placement.label, err)

            self.eeg_operators = {}
            self.electrodes = electrodes
            for head in config.heads:
                model = load_head_model(head)
                elec = electrodes
                if model.kind != "nyhead" and elec is None:
                    elec = EEGElectrodes.from_montage(
                        config.eeg_montage, model.scalp_radius
                    )
                self.eeg_operators[model.name] = EEGOperator(
                    geometry,
                    model,
                    elec,
                    config.head_placement,
                    reference=config.eeg_reference,
                    nyhead_path=config.nyhead_path,
                    nyhead_location=config.nyhead_location,
                )

            self.meg_operators = {}
            if config.meg:
                sensors = meg_sensors or MEGSensors.on_sphere(
                    config.meg_n_sensors, config.meg_radius
                )
                brain_radius = load_head_model(config.meg_head_model).brain_radius
                meg_elec = electrodes
                if meg_elec is None and isinstance(
                    config.head_placement.direction, str
                ):
                    meg_elec = next(
                        (
                            op.electrodes
                            for op in self.eeg_operators.values()
                            if op.head.kind != "nyhead"
                        ),
                        None,
                    )
                for model in config.meg:
                    self.meg_operators[model] = MEGOperator(
                        geometry,
                        model,
                        sensors,
                        config.head_placement,
                        brain_radius=brain_radius,
                        electrodes=meg_elec,
                    )
            logger.info(
                "Forward models built in %.2f s: %d LFP contacts, %d CSD contacts, "
                "%d EEG electrodes, %d MEG sensors",
                time.perf_counter() - t0,
                sum(op.out_shape[0] for op in self.lfp_operators.values()),
                sum(op.out_shape[0] for op in self.csd_operators.values()),
                sum(op.out_shape[0] for op in self.eeg_operators.values()),
                sum(op.out_shape[0] for op in self.meg_operators.values()),
            )

    def __repr__(self) -> str:
        return (
            f"<ForwardModel {getattr(self.geometry, 'name', 'cell')} "
            f"n_seg={self.geometry.n_seg}: LFP {list(self.lfp_operators)}, CSD "
            f"{list(self.csd_operators)}, EEG {list(self.eeg_operators)}, MEG "
            f"{list(self.meg_operators)}>"
        )

    @property
    def operators(self) -> dict:
        """Every operator, keyed ``"<kind>/<label>"``."""
        out = {"dipole/dipole": self.dipole_operator}
        for kind, ops in (
            ("lfp", self.lfp_operators),
            ("csd", self.csd_operators),
            ("eeg", self.eeg_operators),
            ("meg", self.meg_operators),
        ):
            out.update({f"{kind}/{label}": op for label, op in ops.items()})
        return out

    def to(self, device=None, dtype=None) -> ForwardModel:
        """Copy every matrix to ``device`` as ``dtype`` (default float32).

        Returns
        -------
        ForwardModel
            ``self``.
        """
        for op in self.operators.values():
            op.to(device, dtype)
        return self

    @staticmethod
    def _select(ops: dict, labels, kind: str) -> dict:
        if labels is None:
            return ops
        labels = [labels] if isinstance(labels, str) else list(labels)
        missing = [lab for lab in labels if lab not in ops]
        if missing:
            raise ValueError(
                f"labels must be among the {kind} labels {list(ops)}, got {missing}"
            )
        return {lab: ops[lab] for lab in labels}

    def lfp(self, imem, labels=None) -> dict:
        """Extracellular potential at every placed probe.

        Parameters
        ----------
        imem : ndarray or torch.Tensor, shape (n_seg, n_times) or (n_batch, n_seg, n_times)
            Transmembrane currents (nA).
        labels : str | list of str | None
            Probes to compute (default all).

        Returns
        -------
        dict of str to array, shape ([n_batch,] n_contacts, n_times)
            Potentials (mV) by probe label.
        """  # noqa: E501
        return {
            k: op(imem)
            for k, op in self._select(self.lfp_operators, labels, "LFP").items()
        }

    def csd(self, imem, labels=None) -> dict:
        """Ground-truth CSD at every laminar probe.

        Returns
        -------
        dict of str to array, shape ([n_batch,] n_contacts, n_times)
            CSD (nA/µm³) by probe label.
        """
        return {
            k: op(imem)
            for k, op in self._select(self.csd_operators, labels, "CSD").items()
        }

    def dipole(self, imem):
        """Current dipole moment in the cell's frame.

        Returns
        -------
        array, shape ([n_batch,] 3, n_times)
            nA·µm.
        """
        return self.dipole_operator(imem)

    def eeg(self, imem, labels=None) -> dict:
        """EEG for every head model.

        Returns
        -------
        dict of str to array, shape ([n_batch,] n_electrodes, n_times)
            Scalp potential (mV, referenced as configured) by head name.
        """
        return {
            k: op(imem)
            for k, op in self._select(self.eeg_operators, labels, "EEG").items()
        }

    def meg(self, imem, labels=None) -> dict:
        """Magnetic field for every MEG model.

        Returns
        -------
        dict of str to array, shape ([n_batch,] n_sensors, 3, n_times)
            Full field B (fT) by model name.
        """
        return {
            k: op(imem)
            for k, op in self._select(self.meg_operators, labels, "MEG").items()
        }
