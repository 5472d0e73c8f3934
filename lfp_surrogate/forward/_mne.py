"""Optional MNE-Python bridge: montages in, EEG/MEG objects out (lazy import)."""

from __future__ import annotations

import numpy as np

from .._validation import check_option, check_positive
from ._operator import _is_tensor

#: Built-in montages renamed in MNE 1.13 (old names deprecated).
_MONTAGE_ALIASES = {
    "standard_1020": "colin27_1020",
    "standard_1005": "colin27_1005",
}
#: mV -> V
_V_PER_MV = 1e-3
#: fT -> T
_T_PER_FT = 1e-15
#: µm -> m
_M_PER_UM = 1e-6


def _import_mne(purpose: str):
    try:
        import mne
    except ImportError:
        raise ImportError(
            f"MNE-Python is needed for {purpose} but is not installed: "
            f"pip install mne (an optional dependency of lfp_surrogate)"
        ) from None
    return mne


def _to_numpy(data) -> np.ndarray:
    if _is_tensor(data):
        data = data.detach().cpu().numpy()
    return np.asarray(data, dtype=float)


def fit_sphere(points) -> tuple[np.ndarray, float]:
    r"""Least-squares sphere through ``points`` (n, 3): centre (3,) and radius.

    Solves :math:`|\mathbf{p}|^2 = 2\mathbf{c}\cdot\mathbf{p} + k`, with
    :math:`k = r^2 - |\mathbf{c}|^2`, in the least-squares sense.
    """
    points = np.asarray(points, dtype=float)
    A = np.c_[2 * points, np.ones(len(points))]
    b = (points**2).sum(1)
    sol = np.linalg.lstsq(A, b, rcond=None)[0]
    center = sol[:3]
    return center, float(np.sqrt(sol[3] + center @ center))


def montage_positions(name: str, radius: float) -> tuple[list, np.ndarray]:
    """Channel names and positions of an MNE montage on a scalp sphere.

    Parameters
    ----------
    name : str
        A built-in MNE montage (deprecated names are followed to their MNE
        >= 1.13 replacement).
    radius : float
        Scalp radius (µm).

    Returns
    -------
    names : list of str
    positions : ndarray, shape (n_electrodes, 3)
        µm; projected radially from the fitted sphere centre onto the sphere
        of ``radius`` about the origin (x right, y front, z up).
    """
    from ._eeg import project_to_sphere

    mne = _import_mne(f"the EEG montage {name!r}")
    check_positive(radius, "radius")
    builtin = list(mne.channels.get_builtin_montages())
    use = name
    if name in _MONTAGE_ALIASES and _MONTAGE_ALIASES[name] in builtin:
        use = _MONTAGE_ALIASES[name]
    check_option(use, builtin, "montage", "See mne.channels.get_builtin_montages()")
    montage = mne.channels.make_standard_montage(use)
    ch_pos = montage.get_positions()["ch_pos"]
    names = list(ch_pos)
    points = np.array([ch_pos[n] for n in names], dtype=float)
    center, _ = fit_sphere(points)
    return names, project_to_sphere(points, radius, center)


def _dig_montage(mne, names, positions_um):
    ch_pos = {n: np.asarray(p, float) * _M_PER_UM for n, p in zip(names, positions_um)}
    return mne.channels.make_dig_montage(ch_pos=ch_pos, coord_frame="head")


def _wrap(mne, data, info, kind: str, tmin: float):
    check_option(kind, ("raw", "evoked"), "kind")
    if data.ndim == 3:
        return mne.EpochsArray(data, info, tmin=tmin, verbose=False)
    if kind == "raw":
        return mne.io.RawArray(data, info, first_samp=0, verbose=False)
    return mne.EvokedArray(data, info, tmin=tmin, verbose=False)


def eeg_to_mne(eeg, electrodes, sfreq: float, *, kind: str = "raw", tmin: float = 0.0):
    """Hand EEG to MNE-Python as ``RawArray``, ``EvokedArray`` or ``EpochsArray``.

    Parameters
    ----------
    eeg : ndarray or torch.Tensor, shape (n_electrodes, n_times) or (n_batch, n_electrodes, n_times)
        EEG (mV) as returned by :class:`EEGOperator` (already referenced).
    electrodes : EEGElectrodes
        The electrodes it was computed for (names and positions, µm).
    sfreq : float
        Sampling frequency (Hz), e.g. 1000 for 1-ms bins.
    kind : {"raw", "evoked"}
        Object for 2-D data; 3-D data always give ``EpochsArray``.
    tmin : float
        Time of the first sample (s) for evoked and epochs.

    Returns
    -------
    mne.io.RawArray | mne.EvokedArray | mne.EpochsArray
        Data in V, channel type ``eeg``, montage in the head frame (m).
    """  # noqa: E501
    mne = _import_mne("EEG export")
    check_positive(sfreq, "sfreq")
    data = _to_numpy(eeg)
    if data.ndim not in (2, 3) or data.shape[-2] != electrodes.n_electrodes:
        raise ValueError(
            f"eeg must have shape (n_electrodes={electrodes.n_electrodes}, n_times)"
            f" or (n_batch, n_electrodes, n_times), got {data.shape}"
        )
    info = mne.create_info(list(electrodes.names), float(sfreq), "eeg")
    obj = _wrap(mne, data * _V_PER_MV, info, kind, tmin)
    obj.set_montage(_dig_montage(mne, electrodes.names, electrodes.positions))
    return obj


def meg_to_mne(field, sensors, sfreq: float, *, kind: str = "raw", tmin: float = 0.0):
    """Hand MEG to MNE-Python as point magnetometers (normal component, T).

    Parameters
    ----------
    field : ndarray or torch.Tensor, shape (n_sensors, 3, n_times) or (n_batch, n_sensors, 3, n_times)
        Magnetic field (fT) from :class:`MEGOperator`.
    sensors : MEGSensors
        Positions (µm) and normals of the sensors.
    sfreq : float
        Sampling frequency (Hz).
    kind : {"raw", "evoked"}
        Object for unbatched data; batched data give ``EpochsArray``.
    tmin : float
        Time of the first sample (s) for evoked and epochs.

    Returns
    -------
    mne.io.RawArray | mne.EvokedArray | mne.EpochsArray
        Channel type ``mag`` (coil ``FIFFV_COIL_POINT_MAGNETOMETER``), the
        field along each sensor normal in T; channel locations in metres with
        the device frame equal to the head frame.
    """  # noqa: E501
    mne = _import_mne("MEG export")
    check_positive(sfreq, "sfreq")
    data = _to_numpy(field)
    if data.ndim not in (3, 4) or data.shape[-3:-1] != (sensors.n_sensors, 3):
        raise ValueError(
            f"field must have shape (n_sensors={sensors.n_sensors}, 3, n_times) or "
            f"(n_batch, n_sensors, 3, n_times), got {data.shape}"
        )
    normal = np.einsum("...skt,sk->...st", data, sensors.normals) * _T_PER_FT
    info = mne.create_info(list(sensors.names), float(sfreq), "mag")
    for ch, pos, ez in zip(info["chs"], sensors.positions, sensors.normals):
        helper = (
            np.array([1.0, 0.0, 0.0]) if abs(ez[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        )
        ex = np.cross(helper, ez)
        ex /= np.linalg.norm(ex)
        ey = np.cross(ez, ex)
        ch["loc"][:] = np.r_[pos * _M_PER_UM, ex, ey, ez]
        ch["coil_type"] = mne.io.constants.FIFF.FIFFV_COIL_POINT_MAGNETOMETER
    return _wrap(mne, normal, info, kind, tmin)
