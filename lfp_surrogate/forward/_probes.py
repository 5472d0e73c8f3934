"""Probe geometries: MEAutility's catalogue, our ``probes/`` folder, user YAML."""

from __future__ import annotations

import contextlib
import functools
import io
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .._logging import logger
from .._validation import check_type
from ._resources import PROBE_PATH_ENV, data_dirs, yaml_files

#: Source name of the probes that ship with MEAutility.
MEAUTILITY = "MEAutility"

_SHAPES = ("circle", "square", "rect")
_PLANES = ("xy", "yz", "xz")
_TYPES = ("mea", "wire")


@dataclass(frozen=True, eq=False)
class Probe:
    """Contact geometry of an extracellular probe, centred on its contacts.

    Parameters
    ----------
    name : str
        The probe's ``electrode_name``.
    source : str
        ``"MEAutility"`` or the path of the YAML file it was read from.
    positions : ndarray, shape (n_contacts, 3)
        Contact centres (µm), their mean at the origin (MEAutility's
        centring), in channel order.
    normals : ndarray, shape (n_contacts, 3)
        Unit normal of each contact surface.
    main_axes : ndarray, shape (2, 3)
        Two unit vectors spanning the probe plane; contact squares and
        rectangles are aligned with them.
    shape : {"circle", "square", "rect"}
        Contact shape.
    size : float or tuple of 2 float
        MEAutility's convention (µm): circle radius, half the side of a
        square, half width and half height of a rectangle.
    info : dict
        The probe's description as read (MEAutility YAML fields).
    """

    name: str
    source: str
    positions: np.ndarray
    normals: np.ndarray
    main_axes: np.ndarray
    shape: str
    size: float | tuple
    info: dict = field(default_factory=dict)

    @property
    def n_contacts(self) -> int:
        """Number of contacts."""
        return int(self.positions.shape[0])

    def __repr__(self) -> str:
        return (
            f"<Probe {self.name!r}: {self.n_contacts} {self.shape} contacts, "
            f"source {self.source}>"
        )


def probe_dirs() -> list[Path]:
    """Folders searched for probe YAML files, in order.

    The folders in ``$LFP_SURROGATE_PROBE_PATH``, the repository's top-level
    ``probes/`` (``lfp_surrogate/forward/../../probes``) and the packaged
    ``lfp_surrogate/_data/probes``, where they exist.

    Returns
    -------
    dirs : list of Path
    """
    return data_dirs("probes", PROBE_PATH_ENV)


@functools.lru_cache(maxsize=1)
def _meautility_names() -> tuple[str, ...]:
    # MEAutility's catalogue is fixed for an installed version: list it once
    import MEAutility as mu

    with contextlib.redirect_stdout(io.StringIO()):
        return tuple(mu.return_mea_list())


def _looks_like_path(text: str) -> bool:
    return Path(text).suffix in (".yaml", ".yml") or os.sep in text


def check_probe_name(probe: str, name: str = "probe") -> str:
    """Check that ``probe`` is a known probe name, or looks like a YAML path.

    Parameters
    ----------
    probe : str
        A name from :func:`list_probes` or a path (ends in ``.yaml``/``.yml``
        or holds a path separator; its existence is checked when loaded).
    name : str
        The parameter, for the message.

    Returns
    -------
    probe : str

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    if _looks_like_path(probe):
        return probe
    if probe in yaml_files(probe_dirs()) or probe in _meautility_names():
        return probe
    known = [n for n, _ in list_probes()]
    raise ValueError(
        f"{name} must be a known probe name or a YAML path, got {probe!r}. "
        f"Known probes: {', '.join(known)} (`lfp-surrogate probes` lists them)"
    )


def list_probes() -> list[tuple[str, str]]:
    """All probes that :func:`load_probe` finds by name, with their source.

    Returns
    -------
    probes : list of (str, str)
        ``(name, source)`` pairs: first the YAML files of :func:`probe_dirs`
        (source: the file path; name: the file stem), then MEAutility's
        catalogue (source ``"MEAutility"``). A name found in a folder hides
        MEAutility's probe of the same name.
    """
    ours = yaml_files(probe_dirs())
    out = [(name, str(path)) for name, path in sorted(ours.items())]
    out += [(name, MEAUTILITY) for name in _meautility_names() if name not in ours]
    return out


def load_probe(probe, *, verbose=None) -> Probe:
    """Load a probe by name, from a YAML file, or wrap a MEAutility MEA object.

    Parameters
    ----------
    probe : str | os.PathLike | MEAutility.core.MEA | Probe
        A name from :func:`list_probes` (our folders first, then
        MEAutility), the path of a YAML file in MEAutility's format, or a
        MEAutility ``MEA`` object.
    verbose : bool | str | int | None
        Logging level for this call.

    Returns
    -------
    Probe

    Raises
    ------
    ValueError
        For an unknown name, or a malformed file (the message names the file
        and the field).
    FileNotFoundError
        For a path that does not exist.
    """
    from .._logging import use_log_level

    with use_log_level(verbose):
        if isinstance(probe, Probe):
            return probe
        import MEAutility as mu

        if isinstance(probe, mu.core.MEA):
            return _from_mea(
                probe,
                name=probe.info.get("electrode_name", "custom"),
                source="MEA object",
            )
        check_type(probe, (str, os.PathLike), "probe", "a probe name or YAML path")
        text = os.fspath(probe)
        path = Path(text).expanduser()
        if _looks_like_path(text):
            if not path.is_file():
                raise FileNotFoundError(
                    f"probe: no such probe file: {path}. Give an existing YAML "
                    f"file or a name from list_probes()"
                )
            return _load_yaml_probe(path)
        check_probe_name(text)  # an unknown name fails, listing the known ones
        ours = yaml_files(probe_dirs())
        if text in ours:
            return _load_yaml_probe(ours[text])
        with contextlib.redirect_stdout(io.StringIO()):
            mea = mu.return_mea(text)
        logger.debug("probe %s from MEAutility", text)
        return _from_mea(mea, name=text, source=MEAUTILITY)


def _load_yaml_probe(path: Path) -> Probe:
    """Read, validate and build one probe YAML file."""
    try:
        with open(path, encoding="utf-8") as f:
            info = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ValueError(f"probe file {path}: not valid YAML ({err})") from None
    info = validate_probe_info(info, source=str(path))
    import MEAutility as mu

    # build without the channel order first, to check sortlist against the count
    unsorted = _build_mea(mu, {**info, "sortlist": None}, path)
    _check_sortlist(info, len(unsorted.positions), str(path))
    mea = _build_mea(mu, info, path) if info.get("sortlist") else unsorted
    probe = _from_mea(mea, name=info["electrode_name"], source=str(path))
    logger.debug("probe %s from %s", probe.name, path)
    return probe


def _build_mea(mu, info: dict, path: Path):
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return mu.return_mea(info=dict(info))
    except Exception as err:  # MEAutility raises bare Exception/AssertionError
        raise ValueError(
            f"probe file {path}: MEAutility could not build the probe ({err})"
        ) from None


def _from_mea(mea, *, name: str, source: str) -> Probe:
    """Build a :class:`Probe` from a MEAutility ``MEA`` object."""
    positions = np.array(mea.positions, dtype=float).reshape(-1, 3)
    main_axes = np.array(mea.main_axes, dtype=float).reshape(2, 3)
    plane_normal = np.cross(main_axes[0], main_axes[1])
    normals = []
    for el in mea.electrodes:
        n = el.normal
        if n is None or np.any([v is None for v in np.atleast_1d(n)]):
            n = plane_normal
        n = np.asarray(n, dtype=float)
        normals.append(n / np.linalg.norm(n))
    size = mea.size
    if isinstance(size, (list, tuple, np.ndarray)):
        size = tuple(float(s) for s in size)
    else:
        size = float(size)
    return Probe(
        name=str(name),
        source=source,
        positions=positions,
        normals=np.array(normals),
        main_axes=main_axes,
        shape=str(mea.shape),
        size=size,
        info=dict(mea.info),
    )


def _fail(source: str, name: str, need: str, value) -> None:
    raise ValueError(
        f"probe file {source}: field {name!r} must be {need}, got {value!r}"
    )


def _is_pos_number(value) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and np.isfinite(value)
        and value > 0
    )


def _is_number(value) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and np.isfinite(value)
    )


def validate_probe_info(info, *, source: str = "<dict>") -> dict:
    """Check a probe description in MEAutility's YAML format.

    Parameters
    ----------
    info : dict
        Fields: ``electrode_name`` (str, required); either ``pos`` (list of
        2-D or 3-D points, µm) or ``dim`` (int or list of int) with
        ``pitch`` (µm, number or 2 numbers; not needed when ``dim`` is 1);
        optional ``size`` (µm, > 0; 2 numbers for ``rect``), ``shape``
        (circle, square, rect), ``plane`` (xy, yz, xz), ``type`` (mea,
        wire), ``sortlist`` (null or a permutation of the channels),
        ``stagger``, ``offset`` (µm), ``center`` (bool), ``description``.
    source : str
        Where ``info`` came from, for the error messages.

    Returns
    -------
    info : dict
        The same fields (a copy).

    Raises
    ------
    ValueError
        Naming ``source`` and the first bad field.
    """
    if not isinstance(info, dict):
        raise ValueError(
            f"probe file {source}: must hold a mapping of MEAutility fields "
            f"(electrode_name, pos or dim/pitch, ...), got {type(info).__name__}"
        )
    info = dict(info)
    name = info.get("electrode_name")
    if not isinstance(name, str) or not name.strip():
        _fail(source, "electrode_name", "a non-empty string", name)
    if "pos" not in info and "dim" not in info:
        raise ValueError(
            f"probe file {source}: field 'pos' or 'dim' is required: give contact "
            f"positions (pos, µm) or a grid (dim with pitch)"
        )
    if "pos" in info:
        pos = info["pos"]
        arr = None
        with contextlib.suppress(TypeError, ValueError):
            arr = np.array(pos, dtype=float)
        ok = (
            arr is not None
            and arr.size > 0
            and np.all(np.isfinite(arr))
            and (
                arr.ndim == 1
                and arr.size in (2, 3)
                or arr.ndim == 2
                and arr.shape[1] in (2, 3)
            )
        )
        if not ok:
            _fail(source, "pos", "a list of 2-D or 3-D points (µm)", pos)
    else:
        dim = info["dim"]
        dims = dim if isinstance(dim, list) else [dim]
        if not dims or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
            for d in dims
        ):
            _fail(source, "dim", "a positive integer or a list of them", dim)
        if dim != 1:
            if "pitch" not in info:
                _fail(source, "pitch", "given when 'dim' is not 1 (µm)", None)
            pitch = info["pitch"]
            pitches = pitch if isinstance(pitch, list) else [pitch]
            if len(pitches) not in (1, 2) or not all(
                _is_pos_number(p) for p in pitches
            ):
                _fail(
                    source,
                    "pitch",
                    "a positive number or 2 positive numbers (µm)",
                    pitch,
                )
        stagger = info.get("stagger")
        if stagger is not None:
            staggers = stagger if isinstance(stagger, list) else [stagger]
            if not all(_is_number(s) for s in staggers):
                _fail(source, "stagger", "a number or a list of numbers (µm)", stagger)
    shape = info.get("shape", "square")
    if shape not in _SHAPES:
        _fail(source, "shape", f"one of {', '.join(_SHAPES)}", shape)
    if "size" in info:
        size = info["size"]
        if shape == "rect":
            if not (
                isinstance(size, list)
                and len(size) == 2
                and all(_is_pos_number(s) for s in size)
            ):
                _fail(source, "size", "2 positive numbers for shape 'rect' (µm)", size)
        elif not _is_pos_number(size):
            _fail(source, "size", "a positive number (µm)", size)
    elif shape == "rect":
        _fail(source, "size", "2 positive numbers for shape 'rect' (µm)", None)
    if "plane" in info and info["plane"] not in _PLANES:
        _fail(source, "plane", f"one of {', '.join(_PLANES)}", info["plane"])
    if "type" in info and info["type"] not in _TYPES:
        _fail(source, "type", f"one of {', '.join(_TYPES)}", info["type"])
    if "offset" in info and not _is_number(info["offset"]):
        _fail(source, "offset", "a number (µm)", info["offset"])
    if "center" in info and not isinstance(info["center"], bool):
        _fail(source, "center", "true or false", info["center"])
    sortlist = info.get("sortlist")
    if sortlist is not None and not (
        isinstance(sortlist, list)
        and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool)
            for s in sortlist
        )
    ):
        _fail(source, "sortlist", "null or a list of channel indices", sortlist)
    if "description" in info and not isinstance(info["description"], str):
        _fail(source, "description", "a string", info["description"])
    return info


def _check_sortlist(info: dict, n_contacts: int, source: str) -> None:
    sortlist = info.get("sortlist")
    if sortlist is not None and sorted(sortlist) != list(range(n_contacts)):
        _fail(
            source,
            "sortlist",
            f"null or a permutation of 0..{n_contacts - 1}",
            sortlist,
        )
