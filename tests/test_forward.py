"""Tests of lfp_surrogate.forward: probes, placements and linear forward models.

Oracles: LFPykit applied directly to the same geometry (float64, rtol 1e-9),
LFPykit's FEM four-sphere reference, closed-form Biot-Savart fields and the
silence of a radial dipole in a spherical conductor.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import lfpykit
import numpy as np
import pytest
import yaml
from lfpykit.eegmegcalc import (
    FourSphereVolumeConductor,
    InfiniteHomogeneousVolCondMEG,
    InfiniteVolumeConductor,
    NYHeadModel,
    SphericallySymmetricVolCondMEG,
)

from lfp_surrogate.cells._geometry import REGIONS, CellGeometry
from lfp_surrogate.forward import (
    FT_PER_NA_PER_UM,
    ContactInsideCellWarning,
    CSDOperator,
    DipoleOperator,
    EEGElectrodes,
    EEGOperator,
    ForwardConfig,
    ForwardModel,
    HeadPlacement,
    LFPOperator,
    MEGOperator,
    MEGSensors,
    ProbePlacement,
    list_head_models,
    list_probes,
    load_head_model,
    load_probe,
    place_in_head,
    probe_dirs,
    project_to_sphere,
)
from lfp_surrogate.forward._synthetic import synthetic_geometry

torch = pytest.importorskip("torch")

# Our own warnings are errors; tests that expect one use pytest.warns.
pytestmark = pytest.mark.filterwarnings(
    "error::lfp_surrogate.forward.ContactInsideCellWarning"
)

#: float64 physics: LFPykit and our operators do the same arithmetic
RTOL64 = 1e-9
#: Rotation about x by +90 degrees (cell +y onto head +z): independent of our code
RX90 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason="no CUDA device available"
        ),
    ),
]


@pytest.fixture(scope="module")
def geometry():
    """A small synthetic pyramidal cell (soma segment 0 at the origin)."""
    return synthetic_geometry(n_seg=200, seed=3)


@pytest.fixture(scope="module")
def imem(geometry):
    """Random currents with zero sum at every time step (nA), 2 batches."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, geometry.n_seg, 7))
    return x - x.mean(axis=1, keepdims=True)


def _lfpykit_cell(geometry, rotation=None, translation=(0.0, 0.0, 0.0)):
    rotation = np.eye(3) if rotation is None else rotation
    ends = np.stack([geometry.x, geometry.y, geometry.z], axis=-1) @ rotation.T
    ends = ends + np.asarray(translation)
    return lfpykit.CellGeometry(
        x=ends[..., 0].copy(),
        y=ends[..., 1].copy(),
        z=ends[..., 2].copy(),
        d=geometry.d.copy(),
    )


def _laminar_contacts(position, n=16, pitch=100.0):
    """Laminar-16-100 contacts along y (contact 0 lowest) about ``position``."""
    s = (np.arange(n) - (n - 1) / 2) * pitch
    return np.c_[np.zeros(n), s, np.zeros(n)] + np.asarray(position)


def _stick(n_seg=20, length=400.0):
    """A straight cable along +y from the origin, soma first."""
    y = np.linspace(0, length, n_seg + 1)
    zeros = np.zeros((n_seg, 2))
    return CellGeometry(
        name="stick",
        cell_hash="stick",
        x=zeros.copy(),
        y=np.c_[y[:-1], y[1:]],
        z=zeros.copy(),
        d=np.full(n_seg, 2.0),
        area=np.full(n_seg, 1.0),
        length=np.diff(y),
        region=np.array([0] + [REGIONS.index("dend")] * (n_seg - 1)),
        sec_names=("soma", "dend"),
        sec_index=np.array([0] + [1] * (n_seg - 1)),
        seg_x=np.linspace(0, 1, n_seg),
    )


def _dipole_cell(p_cell, a=10.0):
    """Four segments (soma at the origin, three at ±a along x, y, z) and
    currents whose dipole moment is ``p_cell`` (nA·µm) with zero net current."""
    mids = np.array([[0, 0, 0], [a, 0, 0], [0, a, 0], [0, 0, a]], dtype=float)
    half = np.array([0.0, 0.5, 0.0])
    start, end = mids - half, mids + half
    geom = CellGeometry(
        name="dipole",
        cell_hash="dipole",
        x=np.c_[start[:, 0], end[:, 0]],
        y=np.c_[start[:, 1], end[:, 1]],
        z=np.c_[start[:, 2], end[:, 2]],
        d=np.ones(4),
        area=np.ones(4),
        length=np.ones(4),
        region=np.zeros(4, int),
        sec_names=("soma",),
        sec_index=np.zeros(4, int),
        seg_x=np.full(4, 0.5),
    )
    currents = np.r_[0.0, np.asarray(p_cell, float) / a]
    currents[0] = -currents.sum()
    return geom, currents[:, None]


# --------------------------------------------------------------------------
# probes
# --------------------------------------------------------------------------


def test_list_probes_names_sources():
    probes = dict(list_probes())
    for name in ("Laminar-16-100", "Linear-32-50", "Grid-8x8-200"):
        assert name in probes and probes[name].endswith(f"{name}.yaml")
    assert probes["Neuropixels-384"] == "MEAutility"
    assert any(str(d).endswith("probes") for d in probe_dirs())


@pytest.mark.parametrize(
    "name, n, pitch, plane_axes",
    [
        ("Laminar-16-100", 16, 100.0, (1,)),
        ("Linear-32-50", 32, 50.0, (1,)),
        ("Grid-8x8-200", 64, 200.0, (0, 1)),
    ],
)
def test_our_probes_load(name, n, pitch, plane_axes):
    probe = load_probe(name)
    assert probe.n_contacts == n
    pos = probe.positions
    np.testing.assert_allclose(pos.mean(0), 0.0, atol=1e-9, err_msg="centred")
    for axis in range(3):
        values = np.unique(np.round(pos[:, axis], 6))
        if axis in plane_axes:
            np.testing.assert_allclose(np.diff(values), pitch, err_msg=f"{name} pitch")
        else:
            assert values.size == 1, f"{name} contacts off their plane"
    np.testing.assert_allclose(np.abs(probe.normals[:, 2]), 1.0, err_msg="normals")


def test_meautility_probe_and_user_yaml(tmp_path):
    assert load_probe("Neuropixels-384").n_contacts == 384
    info = {
        "electrode_name": "mine",
        "pos": [[0, 0], [0, 40], [0, 80]],
        "plane": "yz",
        "shape": "square",
        "size": 5,
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(info))
    probe = load_probe(path)
    assert probe.name == "mine" and probe.n_contacts == 3
    assert probe.source == str(path)


@pytest.mark.parametrize(
    "field, value",
    [
        ("pitch", "abc"),
        ("dim", -3),
        ("shape", "hexagon"),
        ("size", -1.0),
        ("plane", "ab"),
        ("sortlist", [0, 0, 1]),
        ("electrode_name", None),
    ],
)
def test_malformed_probe_names_file_and_field(tmp_path, field, value):
    info = {
        "electrode_name": "bad",
        "dim": [3, 1],
        "pitch": 10.0,
        "plane": "xy",
        "shape": "circle",
        "size": 5.0,
    }
    info[field] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(info))
    with pytest.raises(ValueError, match=rf"probe file .*bad\.yaml: field '{field}'"):
        load_probe(path)


def test_malformed_probe_yaml_and_missing_fields(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("electrode_name: [unclosed\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: not valid YAML"):
        load_probe(path)
    path.write_text(yaml.safe_dump({"electrode_name": "x"}))
    with pytest.raises(ValueError, match=r"field 'pos' or 'dim' is required"):
        load_probe(path)


def test_unknown_probe_and_missing_path(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"got 'NoSuchProbe'\. Known probes: .*"
        r"Laminar-16-100",
    ):
        load_probe("NoSuchProbe")
    with pytest.raises(FileNotFoundError, match=r"no such probe file"):
        load_probe(tmp_path / "absent.yaml")


# --------------------------------------------------------------------------
# placement
# --------------------------------------------------------------------------


def test_placement_attrs_roundtrip(tmp_path):
    place = ProbePlacement(
        "Laminar-16-100",
        label="lam_b",
        position=(10, 20, 30),
        rotation=(0, 45, 0),
        cell_position=(1, 2, 3),
        cell_rotation=(5, 0, -5),
        n_points=4,
        seed=9,
    )
    attrs = place.attrs()
    assert all(not isinstance(v, dict) for v in attrs.values()), "flat"
    assert ProbePlacement.from_attrs(attrs) == place

    # as h5py gives them back: arrays, numpy scalars, bytes
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f.create_group(place.label).attrs.update(attrs)
    with h5py.File(tmp_path / "p.h5", "r") as f:
        back = ProbePlacement.from_attrs(dict(f[place.label].attrs))
    assert back == place
    mangled = {
        k: (v.encode() if isinstance(v, str) else np.asarray(v))
        for k, v in attrs.items()
    }
    assert ProbePlacement.from_attrs(mangled) == place


@pytest.mark.parametrize("bad", ["Laminar-16-10", "laminar-16-100", "nosuch"])
def test_placement_refuses_an_unknown_probe_name(bad):
    with pytest.raises(
        ValueError,
        match=rf"probe must be a known probe name or a YAML path, got '{bad}'\. "
        r"Known probes: .*Laminar-16-100.*Neuropixels-384",
    ):
        ProbePlacement(bad)


@pytest.mark.parametrize(
    ("field", "match"),
    [
        ("heads", r"heads must be a known head-model name or a YAML path, got"),
        ("meg_head_model", r"meg_head_model must be a known head-model name"),
    ],
)
def test_config_refuses_an_unknown_head_name(field, match):
    value = ["nosuch"] if field == "heads" else "nosuch"
    with pytest.raises(ValueError, match=match + r".*Known head models: .*four_"):
        ForwardConfig(**{field: value})


def test_placement_attrs_errors_and_default_label():
    assert ProbePlacement("Laminar-16-100").label == "Laminar-16-100"
    assert ProbePlacement("/some/where/probe_x.yaml").label == "probe_x"
    attrs = ProbePlacement("Laminar-16-100").attrs()
    del attrs["seed"]
    with pytest.raises(ValueError, match=r"missing key\(s\) \['seed'\]"):
        ProbePlacement.from_attrs(attrs)
    with pytest.raises(ValueError, match=r"position must be 3 finite numbers"):
        ProbePlacement("Laminar-16-100", position=(0, 1))
    with pytest.raises(ValueError, match=r"label must be a non-empty string"):
        ProbePlacement("Laminar-16-100", label="a/b")


def test_same_probe_two_labels_side_by_side(geometry, imem):
    a = ProbePlacement("Laminar-16-100", label="near", position=(40, 300, 0))
    b = ProbePlacement("Laminar-16-100", label="far", position=(200, 300, 0))
    fwd = ForwardModel(geometry, probes=[a, b])
    out = fwd.lfp(imem)
    assert set(out) == {"near", "far"} and out["near"].shape == (2, 16, 7)
    assert np.abs(out["near"]).max() > np.abs(out["far"]).max()
    with pytest.raises(ValueError, match=r"distinct labels, got \['near'\]"):
        ForwardConfig(probes=[a, ProbePlacement("Linear-32-50", label="near")])


@pytest.mark.parametrize("policy", ["raise", "warn", "ignore"])
def test_contact_inside_membrane_policy(geometry, policy):
    place = ProbePlacement("Laminar-16-100", position=(0.0, 50.0, 0.0))  # soma
    if policy == "raise":
        with pytest.raises(ValueError, match=r"inside the cell's membrane"):
            LFPOperator(geometry, place, inside=policy)
    elif policy == "warn":
        with pytest.warns(ContactInsideCellWarning, match=r"inside the cell"):
            LFPOperator(geometry, place, inside=policy)
    else:
        LFPOperator(geometry, place, inside=policy)


# --------------------------------------------------------------------------
# LFP, CSD, dipole against LFPykit
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, sigma",
    [
        ("linesource", 0.3),
        ("pointsource", 0.3),
        ("root_as_point", 0.3),
        ("soma_as_point", 0.3),
        ("linesource", (0.3, 0.2, 0.4)),
        ("pointsource", (0.3, 0.2, 0.4)),
        ("root_as_point", (0.3, 0.2, 0.4)),
    ],
)
def test_lfp_matches_lfpykit(geometry, imem, method, sigma):
    # cell turned +90 deg about z (explicit matrix), probe 60 µm off the axis
    rz90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    place = ProbePlacement(
        "Laminar-16-100", position=(60, 0, 35), cell_rotation=(0, 0, 90)
    )
    op = LFPOperator(geometry, place, sigma=sigma, method=method)

    cell = _lfpykit_cell(geometry, rz90)
    x, y, z = _laminar_contacts((60, 0, 35)).T.copy()
    lfp_method = "root_as_point" if method == "soma_as_point" else method
    if np.ndim(sigma) == 0 and lfp_method == "linesource":
        ref = lfpykit.LineSourcePotential(cell, x=x, y=y, z=z, sigma=sigma)
    elif np.ndim(sigma) == 0 and lfp_method == "pointsource":
        ref = lfpykit.PointSourcePotential(cell, x=x, y=y, z=z, sigma=sigma)
    else:
        ref = lfpykit.RecExtElectrode(
            cell,
            x=x,
            y=y,
            z=z,
            method=lfp_method,
            sigma=np.array(sigma) if np.ndim(sigma) else sigma,
        )
    M_ref = ref.get_transformation_matrix()
    np.testing.assert_allclose(
        op.matrix,
        M_ref,
        rtol=RTOL64,
        atol=0,
        err_msg=f"LFP matrix ({method}, sigma={sigma})",
    )
    np.testing.assert_allclose(
        op(imem),
        M_ref @ imem,
        rtol=RTOL64,
        atol=1e-12 * np.abs(M_ref @ imem).max(),
        err_msg="LFP (mV)",
    )


def test_extended_contacts_seeded(geometry):
    base = dict(probe="Laminar-16-100", position=(60, 300, 0), n_points=6)
    a1 = LFPOperator(geometry, ProbePlacement(**base, seed=1))
    a2 = LFPOperator(geometry, ProbePlacement(**base, seed=1))
    b = LFPOperator(geometry, ProbePlacement(**base, seed=2))
    np.testing.assert_array_equal(a1.matrix, a2.matrix, err_msg="same seed")
    assert not np.allclose(a1.matrix, b.matrix, rtol=1e-6), "seeds must differ"

    # points lie on each contact disc (r = 7.5 µm, plane z = 0)
    rel = a1.points - a1.contacts[:, None, :]
    np.testing.assert_allclose(rel[..., 2], 0.0, atol=1e-12, err_msg="in plane")
    assert np.all(np.linalg.norm(rel, axis=-1) <= 7.5 + 1e-12)

    # the mean of LFPykit's point-contact matrices at those points
    pts = a1.points.reshape(-1, 3)
    ref = lfpykit.LineSourcePotential(
        _lfpykit_cell(geometry),
        x=pts[:, 0].copy(),
        y=pts[:, 1].copy(),
        z=pts[:, 2].copy(),
        sigma=0.3,
    ).get_transformation_matrix()
    np.testing.assert_allclose(
        a1.matrix,
        ref.reshape(16, 6, -1).mean(1),
        rtol=RTOL64,
        err_msg="contact average",
    )


# LFPykit's own advice when the CSD bins are longer than every segment; it is
# raised by the reference computed here (our operator logs it instead).
@pytest.mark.filterwarnings("ignore:All compartments should be shorter:UserWarning")
def test_csd_matches_lfpykit(geometry, imem):
    # apical axis onto +z; the probe, turned onto z too, 20 µm off the axis
    place = ProbePlacement(
        "Laminar-16-100",
        position=(20, 0, 300),
        rotation=(90, 0, 0),
        cell_rotation=(90, 0, 0),
    )
    op = CSDOperator(geometry, place, radius=80.0)

    z = _laminar_contacts((0, 300, 0))[:, 1]
    edges = np.c_[z - 50, z + 50]
    ref = lfpykit.LaminarCurrentSourceDensity(
        cell=_lfpykit_cell(geometry, RX90), z=edges, r=np.full(16, 80.0)
    )
    ref.lateral_offset = np.array([20.0, 0.0])
    M_ref = ref.get_transformation_matrix()
    assert np.abs(M_ref).max() > 0
    np.testing.assert_allclose(
        op.matrix,
        M_ref,
        rtol=RTOL64,
        atol=1e-12 * np.abs(M_ref).max(),
        err_msg="CSD matrix (nA/µm³ per nA)",
    )
    assert op(imem).shape == (2, 16, 7)


def test_csd_needs_laminar_probe(geometry):
    place = ProbePlacement("Neuropixels-64", position=(60, 300, 0))
    with pytest.raises(NotImplementedError, match=r"CSD needs a laminar probe"):
        CSDOperator(geometry, place)


def test_dipole_matches_lfpykit(geometry, imem):
    op = DipoleOperator(geometry)
    ref = lfpykit.CurrentDipoleMoment(_lfpykit_cell(geometry))
    np.testing.assert_allclose(
        op(imem),
        ref.get_transformation_matrix() @ imem,
        rtol=RTOL64,
        atol=1e-12,
        err_msg="dipole (nA·µm)",
    )
    assert op(imem).shape == (2, 3, 7)


# --------------------------------------------------------------------------
# torch path
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def operators(geometry):
    elec = project_to_sphere(np.random.default_rng(2).normal(size=(12, 3)), 90000.0)
    return [
        LFPOperator(geometry, ProbePlacement("Laminar-16-100", position=(60, 300, 0))),
        DipoleOperator(geometry),
        EEGOperator(geometry, "four_sphere_lfpy_default", elec),
        MEGOperator(geometry, "spherical", MEGSensors.on_sphere(10)),
    ]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_equals_numpy(operators, imem, device, dtype):
    tdtype = getattr(torch, dtype)
    x = torch.as_tensor(imem, dtype=tdtype).to(device)  # drawn on CPU, then moved
    for op in operators:
        ref = op(imem)
        for batch in (x, x[0]):
            out = op.to(device, tdtype)(batch)
            assert out.device.type == device and out.dtype == tdtype
            want = ref if batch.ndim == 3 else ref[0]
            assert tuple(out.shape) == want.shape
            scale = np.abs(want).max()
            # float64: rounding only. float32: matrix and imem rounded to 2^-24
            # relative, summed over n_seg terms -> about sqrt(n_seg) * 6e-8.
            atol = 1e-12 * scale if dtype == "float64" else 2e-5 * scale
            np.testing.assert_allclose(
                out.cpu().double().numpy(),
                want,
                rtol=0,
                atol=atol,
                err_msg=f"{op.kind} {dtype}",
            )


def test_torch_is_differentiable(operators, imem):
    x = torch.as_tensor(imem, dtype=torch.float64).requires_grad_(True)
    op = operators[0]
    op(x).sum().backward()
    expected = np.broadcast_to(op.matrix.sum(0)[None, :, None], imem.shape)
    np.testing.assert_allclose(
        x.grad.numpy(), expected, rtol=1e-12, err_msg="d(sum LFP)/d imem"
    )


def test_wrong_imem_shape(operators, geometry):
    op = operators[0]
    with pytest.raises(
        ValueError,
        match=r"imem must have shape \(n_seg, n_times\) "
        r"or \(n_batch, n_seg, n_times\) with "
        r"n_seg=200, got \(199, 5\)",
    ):
        op(np.zeros((199, 5)))
    with pytest.raises(ValueError, match=r"it looks transposed"):
        op(np.zeros((5, geometry.n_seg)))
    with pytest.raises(ValueError, match=r"imem must have shape"):
        op(torch.zeros(geometry.n_seg))
    with pytest.raises(TypeError, match=r"floating-point tensor"):
        op(torch.zeros((geometry.n_seg, 3), dtype=torch.int64))


# --------------------------------------------------------------------------
# heads and EEG
# --------------------------------------------------------------------------


def test_head_model_files():
    names = dict(list_head_models())
    for name in (
        "four_sphere_lfpy_default",
        "four_sphere_naess2017_skull20",
        "four_sphere_naess2017_skull40",
        "four_sphere_naess2017_skull80",
        "infinite_homogeneous",
        "nyhead",
    ):
        assert name in names
    default = load_head_model("four_sphere_lfpy_default")
    assert default.radii == (79000.0, 80000.0, 85000.0, 90000.0)
    assert default.sigmas == (0.3, 1.5, 0.015, 0.3)
    for ratio in (20, 40, 80):
        head = load_head_model(f"four_sphere_naess2017_skull{ratio}")
        np.testing.assert_allclose(
            head.sigmas,
            [1 / 3, 5 / 3, 1 / 3 / ratio, 1 / 3],
            rtol=1e-15,
            err_msg=f"Næss sigmas {ratio}",
        )
        assert head.doi == "10.3389/fnhum.2017.00490"


def test_unknown_and_malformed_head(tmp_path):
    with pytest.raises(ValueError, match=r"got 'no_head'\. Known head models: "):
        load_head_model("no_head")
    path = tmp_path / "h.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "kind": "four_sphere",
                "reference": "r",
                "doi": "d",
                "radii": [1, 2, 3],
                "sigmas": [1, 1, 1, 1],
            }
        )
    )
    with pytest.raises(ValueError, match=r"h\.yaml: field 'radii' must be 4"):
        load_head_model(path)


def test_cell_placement_in_head(geometry):
    head = load_head_model("four_sphere_lfpy_default")
    placed = place_in_head(geometry, HeadPlacement(direction=(1, 1, 0)), 79000.0)
    radial = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    np.testing.assert_allclose(
        placed.rotation @ [0, 1, 0], radial, atol=1e-12, err_msg="apical axis radial"
    )
    reach = np.linalg.norm(
        np.stack([placed.cell.x, placed.cell.y, placed.cell.z], -1), axis=-1
    ).max()
    assert reach < head.brain_radius
    top = (np.stack([geometry.x, geometry.y], -1)[..., 1]).max()
    assert top < placed.depth < top + 100.0, "default depth: fits, with margin"

    tangential = place_in_head(geometry, HeadPlacement(tilt=90.0), 79000.0)
    assert abs((tangential.rotation @ [0, 1, 0]) @ [0, 0, 1]) < 1e-12


def test_cell_outside_brain(geometry):
    with pytest.raises(ValueError, match=r"cell outside the brain: at depth 300 µm"):
        place_in_head(geometry, HeadPlacement(depth=300.0), 79000.0)
    with pytest.raises(ValueError, match=r"depth must be less than the brain radius"):
        place_in_head(geometry, HeadPlacement(depth=80000.0), 79000.0)


def test_eeg_four_sphere_matches_lfpykit(geometry, imem):
    elec = project_to_sphere(np.random.default_rng(5).normal(size=(15, 3)), 90000.0)
    op = EEGOperator(
        geometry,
        "four_sphere_lfpy_default",
        elec,
        HeadPlacement(depth=1200.0),
        reference="none",
    )
    soma = np.array([0.0, 0.0, 79000.0 - 1200.0])
    P = (
        lfpykit.CurrentDipoleMoment(
            _lfpykit_cell(geometry, RX90)
        ).get_transformation_matrix()
        @ imem[0]
    )
    model = FourSphereVolumeConductor(
        elec * (1 - 1e-12), [79000.0, 80000.0, 85000.0, 90000.0], [0.3, 1.5, 0.015, 0.3]
    )
    ref = model.get_dipole_potential(P, soma)
    np.testing.assert_allclose(
        op.matrix @ imem[0],
        ref,
        rtol=1e-9,
        atol=1e-12 * np.abs(ref).max(),
        err_msg="EEG matrix",
    )
    np.testing.assert_allclose(
        op(imem[0]), ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max(), err_msg="EEG (mV)"
    )

    avg = EEGOperator(
        geometry, "four_sphere_lfpy_default", elec, HeadPlacement(depth=1200.0)
    )
    np.testing.assert_allclose(
        avg(imem[0]),
        ref - ref.mean(0),
        rtol=1e-9,
        atol=1e-12 * np.abs(ref).max(),
        err_msg="average-referenced EEG",
    )
    named = EEGOperator(
        geometry,
        "four_sphere_lfpy_default",
        elec,
        HeadPlacement(depth=1200.0),
        reference="E3",
    )
    np.testing.assert_allclose(named(imem[0])[2], 0.0, atol=0, err_msg="ref row")
    with pytest.raises(
        ValueError,
        match=r"reference must be 'average', 'none' or "
        r"an electrode name",
    ):
        EEGOperator(geometry, "four_sphere_lfpy_default", elec, reference="Cz")


def test_eeg_infinite_matches_lfpykit(geometry, imem):
    elec = project_to_sphere(np.random.default_rng(6).normal(size=(8, 3)), 90000.0)
    op = EEGOperator(
        geometry,
        "infinite_homogeneous",
        elec,
        HeadPlacement(depth=1200.0),
        reference="none",
    )
    soma = np.array([0.0, 0.0, 77800.0])
    P = (
        lfpykit.CurrentDipoleMoment(
            _lfpykit_cell(geometry, RX90)
        ).get_transformation_matrix()
        @ imem[1]
    )
    ref = InfiniteVolumeConductor(0.3).get_dipole_potential(P, elec - soma)
    np.testing.assert_allclose(op(imem[1]), ref, rtol=1e-9, err_msg="EEG inf (mV)")


def test_eeg_four_sphere_vs_fem_reference():
    """LFPykit's FEM solution (Næss et al. 2017, brain/skull ratio 20)."""
    fem = np.load(os.path.join(lfpykit.__path__[0], "tests", "fem_mix_dip.npz"))
    p_head = fem["p"][0]  # nA·µm
    p_cell = RX90.T @ p_head
    geom, currents = _dipole_cell(p_cell)
    depth = 79000.0 - fem["rz"][2]
    op = EEGOperator(
        geom,
        "four_sphere_naess2017_skull20",
        fem["ele_coords"],
        HeadPlacement(depth=depth),
        reference="none",
    )
    np.testing.assert_allclose(op.in_head.dipole_location, fem["rz"], atol=1e-9)
    pot = op(currents)[:, 0] * 1e3  # mV -> µV
    pot_fem = fem["pot_fem"].reshape(-1)
    global_error = np.abs(pot - pot_fem) / np.abs(pot_fem).max()
    # the criterion of LFPykit's own test (test_get_dipole_potential_01)
    np.testing.assert_array_less(global_error, 0.01)


def test_electrodes_off_scalp(geometry):
    elec = project_to_sphere(np.eye(3), 90000.0)
    elec[1] *= 0.9
    with pytest.raises(
        ValueError,
        match=r"electrodes off the scalp: 1 electrode\(s\)"
        r" .*'E2' at 81000 µm",
    ):
        EEGOperator(geometry, "four_sphere_lfpy_default", elec)
    with pytest.raises(ValueError, match=r"electrodes off the scalp"):
        EEGOperator(geometry, "four_sphere_lfpy_default", elec * 1e-6)  # metres


def _write_nyhead(path, n_vertices=40, n_electrodes=9, seed=0):
    """A tiny file with the layout LFPykit's NYHeadModel reads."""
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(3, n_vertices))
    normals /= np.linalg.norm(normals, axis=0)
    with h5py.File(path, "w") as f:
        sa = f.create_group("sa")
        cortex = sa.create_group("cortex75K")
        cortex["vc"] = 70.0 * normals  # mm
        cortex["normals"] = normals
        cortex["V_fem"] = rng.normal(size=(3, n_vertices, n_electrodes))
        cortex["V_fem_normal"] = rng.normal(size=(n_vertices, n_electrodes))
        locs = rng.normal(size=(3, n_electrodes))
        sa["locs_3D"] = np.r_[
            90.0 * locs / np.linalg.norm(locs, axis=0), np.zeros((2, n_electrodes))
        ]
    return 70.0 * normals


def test_nyhead_synthetic_file_matches_lfpykit(tmp_path, geometry, imem):
    path = tmp_path / "sa_nyhead.mat"
    vc = _write_nyhead(path)
    loc = vc[:, 7]
    op = EEGOperator(
        geometry, "nyhead", nyhead_path=path, nyhead_location=loc, reference="none"
    )
    nyhead = NYHeadModel(nyhead_file=str(path))
    nyhead.set_dipole_pos(loc)
    P = DipoleOperator(geometry)(imem[0])
    p_rot = nyhead.rotate_dipole_to_surface_normal(P, np.array([0.0, 1.0, 0.0]))
    ref = nyhead.get_transformation_matrix() @ p_rot
    np.testing.assert_allclose(
        op(imem[0]),
        ref,
        rtol=1e-9,
        atol=1e-12 * np.abs(ref).max(),
        err_msg="NY head EEG",
    )
    assert op.electrodes.n_electrodes == 9


def test_nyhead_missing_file(tmp_path, geometry):
    with pytest.raises(
        FileNotFoundError,
        match=r"New York head model file not "
        r"found: .*absent\.mat\..*never "
        r"downloaded.*parralab\.org",
    ):
        EEGOperator(geometry, "nyhead", nyhead_path=tmp_path / "absent.mat")


# --------------------------------------------------------------------------
# MEG
# --------------------------------------------------------------------------


def test_meg_biot_savart_closed_form():
    p_cell = np.array([30.0, -50.0, 80.0])  # nA·µm
    geom, currents = _dipole_cell(p_cell)
    sensors = MEGSensors(
        positions=[[5000.0, 2000.0, 90000.0], [-40000.0, 0.0, 85000.0]],
        normals=[[0, 0, 1], [0, 0, 1]],
    )
    op = MEGOperator(geom, "infinite", sensors, HeadPlacement(depth=1000.0))
    B = op(currents)[:, :, 0]  # (n_sensors, 3) fT

    # SI: B = mu0 / (4 pi) p x R / |R|^3, p in A·m, R in m, B in T
    mu0 = 4e-7 * np.pi
    p_si = (RX90 @ p_cell) * 1e-9 * 1e-6
    R = (sensors.positions - [0.0, 0.0, 78000.0]) * 1e-6
    B_si = (
        mu0
        / (4 * np.pi)
        * np.cross(p_si, R)
        / np.linalg.norm(R, axis=1, keepdims=True) ** 3
    )
    np.testing.assert_allclose(B, B_si * 1e15, rtol=1e-12, err_msg="B (fT)")
    np.testing.assert_allclose(FT_PER_NA_PER_UM, 4 * np.pi * 1e5, rtol=1e-15)


def test_meg_spherical_radial_dipole_is_silent(imem):
    stick = _stick()
    currents = np.random.default_rng(4).normal(size=(stick.n_seg, 5))
    sensors = MEGSensors.on_sphere(30, 110000.0)
    sph = MEGOperator(stick, "spherical", sensors, HeadPlacement(direction=(1, 2, 3)))
    inf = MEGOperator(stick, "infinite", sensors, HeadPlacement(direction=(1, 2, 3)))
    scale = np.abs(inf(currents)).max()
    np.testing.assert_allclose(
        sph(currents), 0.0, atol=1e-10 * scale, err_msg="radial dipole in a sphere"
    )


def test_meg_spherical_matches_lfpykit(geometry, imem):
    sensors = MEGSensors.on_sphere(12, 110000.0)
    op = MEGOperator(
        geometry, "spherical", sensors, HeadPlacement(depth=1200.0, tilt=90.0)
    )
    soma = np.array([0.0, 0.0, 77800.0])
    rot = RX90 @ RX90  # tilt +90 deg about the turned x-axis (= x)
    P = (
        lfpykit.CurrentDipoleMoment(
            _lfpykit_cell(geometry, rot)
        ).get_transformation_matrix()
        @ imem[0]
    )
    H = SphericallySymmetricVolCondMEG(r=np.array(sensors.positions)).calculate_H(
        P, soma
    )
    mu0_h_in_ft = 4e-7 * np.pi * 1e-3 * 1e15
    ref = H * mu0_h_in_ft
    np.testing.assert_allclose(
        op(imem[0]), ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max(), err_msg="B (fT)"
    )
    inf = MEGOperator(
        geometry, "infinite", sensors, HeadPlacement(depth=1200.0, tilt=90.0)
    )
    H_inf = InfiniteHomogeneousVolCondMEG(np.array(sensors.positions)).calculate_H(
        P, soma
    )
    np.testing.assert_allclose(
        inf(imem[0]),
        H_inf * mu0_h_in_ft,
        rtol=1e-9,
        atol=1e-12 * np.abs(H_inf).max() * mu0_h_in_ft,
    )
    assert op(imem).shape == (2, 12, 3, 7)
    assert sensors.normal_component(op(imem)).shape == (2, 12, 7)


def test_meg_sensor_inside_head(geometry):
    sensors = MEGSensors(positions=[[0, 0, 50000.0]], normals=[[0, 0, 1]])
    with pytest.raises(
        ValueError,
        match=r"sensors must be farther from the head "
        r"centre than the dipole",
    ):
        MEGOperator(geometry, "spherical", sensors)


# --------------------------------------------------------------------------
# ForwardModel, ForwardConfig, MNE, plots
# --------------------------------------------------------------------------


def test_forward_model_api(geometry, imem):
    elec = project_to_sphere(np.random.default_rng(8).normal(size=(10, 3)), 90000.0)
    fwd = ForwardModel(
        geometry,
        probes=[
            ProbePlacement("Laminar-16-100", position=(60, 300, 0)),
            ProbePlacement(
                "Neuropixels-24", position=(60, 300, 0), rotation=(-90, 0, 0)
            ),
        ],
        heads=["four_sphere_lfpy_default", "infinite_homogeneous"],
        meg=["spherical"],
        meg_n_sensors=8,
        electrodes=elec,
    )
    assert set(fwd.lfp(imem)) == {"Laminar-16-100", "Neuropixels-24"}
    assert set(fwd.csd(imem)) == {"Laminar-16-100"}
    assert fwd.lfp(imem)["Neuropixels-24"].shape == (2, 24, 7)
    assert fwd.dipole(imem).shape == (2, 3, 7)
    assert fwd.eeg(imem)["infinite_homogeneous"].shape == (2, 10, 7)
    assert fwd.meg(imem)["spherical"].shape == (2, 8, 3, 7)
    x = torch.as_tensor(imem[0], dtype=torch.float32)
    assert fwd.to("cpu").lfp(x)["Laminar-16-100"].dtype == torch.float32
    with pytest.raises(ValueError, match=r"labels must be among the LFP labels"):
        fwd.lfp(imem, labels="nope")


def test_forward_config_yaml_roundtrip(tmp_path):
    cfg = ForwardConfig(
        probes=[
            ProbePlacement("Laminar-16-100", label="lam", position=(1, 2, 3)),
            "Linear-32-50",
        ],
        sigma=(0.3, 0.3, 0.2),
        method="soma_as_point",
        heads=["four_sphere_naess2017_skull40"],
        head_placement=HeadPlacement(direction=(0, 1, 1), tilt=30.0),
        meg=["spherical", "infinite"],
        nyhead_location=(1.0, 2.0, 3.0),
    )
    assert cfg.method == "root_as_point"
    path = cfg.to_yaml(tmp_path / "fwd.yaml")
    assert ForwardConfig.from_yaml(path) == cfg
    with pytest.raises(FileExistsError, match=r"exists; pass overwrite=True"):
        cfg.to_yaml(path)
    cfg.to_yaml(path, overwrite=True)
    data = yaml.safe_load(path.read_text())
    data["colour"] = "red"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(
        ValueError,
        match=r"fwd\.yaml: forward config has unknown "
        r"key\(s\) \['colour'\]",
    ):
        ForwardConfig.from_yaml(path)
    with pytest.raises(
        ValueError,
        match=r"meg must be one of 'infinite', "
        r"'spherical'",
    ):
        ForwardConfig(meg=["squid"])


def test_mne_montage_and_export(geometry, imem):
    mne = pytest.importorskip("mne", reason="MNE-Python (optional) not installed")
    elec = EEGElectrodes.from_montage("standard_1020", 90000.0)
    np.testing.assert_allclose(
        np.linalg.norm(elec.positions, axis=1),
        90000.0,
        rtol=1e-12,
        err_msg="projected onto the scalp",
    )
    op = EEGOperator(
        geometry, "four_sphere_lfpy_default", elec, HeadPlacement(direction="Cz")
    )
    cz = elec.positions[elec.names.index("Cz")]
    np.testing.assert_allclose(op.in_head.radial, cz / 90000.0, atol=1e-12)
    eeg = op(imem[0])
    raw = __import__("lfp_surrogate.forward", fromlist=["eeg_to_mne"]).eeg_to_mne(
        eeg, elec, 1000.0
    )
    assert isinstance(raw, mne.io.RawArray)
    np.testing.assert_allclose(
        raw.get_data(), eeg * 1e-3, rtol=1e-12, err_msg="EEG in V"
    )
    from lfp_surrogate.forward import meg_to_mne

    sensors = MEGSensors.on_sphere(6)
    meg_op = MEGOperator(geometry, "spherical", sensors)
    field = meg_op(imem)
    epochs = meg_to_mne(field, sensors, 1000.0)
    assert isinstance(epochs, mne.EpochsArray)
    np.testing.assert_allclose(
        epochs.get_data(),
        sensors.normal_component(field) * 1e-15,
        rtol=1e-12,
        err_msg="MEG in T",
    )
    evoked = meg_to_mne(field[0], sensors, 1000.0, kind="evoked")
    assert isinstance(evoked, mne.EvokedArray)


def test_mne_missing_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "mne", None)
    with pytest.raises(ImportError, match=r"pip install mne"):
        EEGElectrodes.from_montage("standard_1020", 90000.0)


def test_plots_return_figures(geometry, imem, operators):
    from matplotlib.figure import Figure

    from lfp_surrogate.forward import (
        plot_cell_in_head,
        plot_csd,
        plot_lfp,
        plot_probe_morphology,
    )

    place = ProbePlacement("Laminar-16-100", position=(60, 300, 0))
    fig = plot_probe_morphology(geometry, [place, operators[0]])
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert fig.axes[0].get_xlabel() == "x (µm)"
    lfp, eeg_op, meg_op = operators[0], operators[2], operators[3]
    fig = plot_lfp(lfp(imem[0]), lfp, dt=1.0)
    assert fig.axes[0].get_ylabel() == "position along probe (µm)"
    csd_op = CSDOperator(geometry, place)
    assert isinstance(plot_csd(csd_op(imem[0]), csd_op), Figure)
    assert isinstance(plot_cell_in_head(eeg_op), Figure)
    assert isinstance(plot_cell_in_head(meg_op, projection="yz"), Figure)
    for f in (fig,):
        f.savefig(os.devnull, format="png")


def test_more_error_messages(tmp_path, geometry):
    # anisotropic root_as_point: LFPykit roots at segment 0 only
    two_soma = synthetic_geometry(n_seg=60, seed=1)
    region = two_soma.region.copy()
    region[5] = 0
    two_soma = dataclasses.replace(two_soma, region=region)
    place = ProbePlacement("Laminar-16-100", position=(60, 300, 0))
    with pytest.raises(
        NotImplementedError,
        match=r"anisotropic sigma treats "
        r"segment 0 as the soma",
    ):
        LFPOperator(two_soma, place, sigma=(0.3, 0.3, 0.2), method="root_as_point")
    with pytest.raises(
        ValueError,
        match=r"method must be one of 'linesource', "
        r"'pointsource', 'root_as_point'",
    ):
        LFPOperator(geometry, place, method="dipole")
    with pytest.raises(ValueError, match=r"sigma must be a positive number or 3"):
        LFPOperator(geometry, place, sigma=(0.3, -1.0, 0.3))

    # New York head: a location off the cortex
    path = tmp_path / "ny.mat"
    _write_nyhead(path)
    with pytest.raises(ValueError, match=r"mm from the nearest cortex vertex"):
        EEGOperator(
            geometry, "nyhead", nyhead_path=path, nyhead_location=(0.0, 0.0, 0.0)
        )
    with pytest.raises(
        ValueError,
        match=r"nyhead_location must be 3 numbers \(mm\) "
        r"or one of calcarine_sulcus",
    ):
        EEGOperator(geometry, "nyhead", nyhead_path=path, nyhead_location="nose")

    # a direction naming an unknown electrode
    elec = EEGElectrodes(project_to_sphere(np.eye(3), 90000.0), names=("A", "B", "C"))
    with pytest.raises(
        ValueError,
        match=r"one of the electrode names A, B, C, got "
        r"'Cz'",
    ):
        EEGOperator(
            geometry, "four_sphere_lfpy_default", elec, HeadPlacement(direction="Cz")
        )
    with pytest.raises(ValueError, match=r"direction must be a non-zero vector"):
        HeadPlacement(direction=(0, 0, 0))
