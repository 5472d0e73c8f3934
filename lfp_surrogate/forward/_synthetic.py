"""A synthetic pyramidal-like cell geometry for tests and benchmarks (no NEURON)."""

from __future__ import annotations

import numpy as np

from ..cells._geometry import REGIONS, CellGeometry


def synthetic_geometry(
    n_seg: int = 913, seed: int = 0, *, name: str = "synthetic_pyramidal"
) -> CellGeometry:
    """A random, roughly L5-pyramidal tree of straight segments.

    Soma (one 20-µm cylinder along y, centred at the origin), an axon down
    -y, an apical trunk up +y to 700 µm with a tuft reaching about 1000 µm,
    oblique dendrites off the trunk and basal dendrites around the soma: in
    all about 1.2 mm tall, like the L5 cell the package targets. Segments of
    a section are consecutive, sections ordered soma, axon, basal, trunk,
    oblique, tuft.

    Parameters
    ----------
    n_seg : int
        Number of segments (at least 30).
    seed : int
        Seed of the random directions.
    name : str
        The geometry's name.

    Returns
    -------
    CellGeometry
        With x, y, z (n_seg, 2) µm, d, area, length (n_seg,), regions.
    """
    if n_seg < 30:
        raise ValueError(f"n_seg must be >= 30, got {n_seg}")
    rng = np.random.default_rng(seed)

    def unit(v):
        v = np.asarray(v, float)
        return v / np.linalg.norm(v)

    trunk_top = np.array([0.0, 700.0, 0.0])
    sections = []  # (name, region, start, direction, length, diameter, weight)
    sections.append(
        (
            "axon",
            "axon",
            np.array([0.0, -10.0, 0.0]),
            unit([0.05, -1.0, 0.0]),
            400.0,
            1.0,
            2.0,
        )
    )
    for k in range(8):
        phi = 2 * np.pi * k / 8 + rng.uniform(-0.3, 0.3)
        direction = unit([np.cos(phi), rng.uniform(-0.9, -0.1), np.sin(phi)])
        sections.append(
            (
                f"dend[{k}]",
                "basal",
                10.0 * direction * np.r_[1, 0, 1],
                direction,
                rng.uniform(150, 250),
                1.0,
                3.0,
            )
        )
    sections.append(
        (
            "apic[0]",
            "apical_trunk",
            np.array([0.0, 10.0, 0.0]),
            unit(trunk_top - [0.0, 10.0, 0.0]),
            690.0,
            3.0,
            6.0,
        )
    )
    for k in range(8):
        y0 = rng.uniform(100, 550)
        phi = rng.uniform(0, 2 * np.pi)
        direction = unit([np.cos(phi), rng.uniform(0.2, 0.6), np.sin(phi)])
        sections.append(
            (
                f"apic[{k + 1}]",
                "oblique",
                np.array([0.0, y0, 0.0]),
                direction,
                rng.uniform(120, 220),
                0.8,
                2.5,
            )
        )
    for k in range(6):
        phi = 2 * np.pi * k / 6 + rng.uniform(-0.3, 0.3)
        direction = unit([0.5 * np.cos(phi), 1.0, 0.5 * np.sin(phi)])
        sections.append(
            (
                f"apic[{k + 9}]",
                "tuft",
                trunk_top,
                direction,
                rng.uniform(280, 330),
                1.0,
                4.0,
            )
        )

    # share the segments (one for the soma) by weight
    weights = np.array([s[-1] for s in sections])
    counts = np.maximum(1, np.floor(weights / weights.sum() * (n_seg - 1))).astype(int)
    counts[np.argmax(weights)] += n_seg - 1 - counts.sum()

    starts, ends, diam, region, sec_index, seg_x = [], [], [], [], [], []
    sec_names = ["soma[0]"]
    starts.append([0.0, -10.0, 0.0])
    ends.append([0.0, 10.0, 0.0])
    diam.append(20.0)
    region.append(REGIONS.index("soma"))
    sec_index.append(0)
    seg_x.append(0.5)
    for (sec, reg, start, direction, length, d0, _), n in zip(sections, counts):
        sec_names.append(sec)
        step = length / n
        point = np.asarray(start, float)
        heading = direction
        for j in range(n):
            # a gently wandering heading keeps branches plausible
            heading = unit(heading + rng.normal(0.0, 0.08, 3))
            nxt = point + step * heading
            starts.append(point)
            ends.append(nxt)
            taper = 1.0 - 0.5 * (j + 0.5) / n if reg == "apical_trunk" else 1.0
            diam.append(d0 * taper)
            region.append(REGIONS.index(reg))
            sec_index.append(len(sec_names) - 1)
            seg_x.append((j + 0.5) / n)
            point = nxt

    starts = np.array(starts)
    ends = np.array(ends)
    d = np.array(diam)
    length = np.linalg.norm(ends - starts, axis=1)
    return CellGeometry(
        name=name,
        cell_hash=f"synthetic-{n_seg}-{seed}",
        x=np.c_[starts[:, 0], ends[:, 0]],
        y=np.c_[starts[:, 1], ends[:, 1]],
        z=np.c_[starts[:, 2], ends[:, 2]],
        d=d,
        area=np.pi * d * length,
        length=length,
        region=np.array(region),
        sec_names=tuple(sec_names),
        sec_index=np.array(sec_index),
        seg_x=np.array(seg_x),
        meta={"synthetic": True, "seed": seed},
    )
