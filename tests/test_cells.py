"""Cells: catalogue, mechanism cache, geometry, regions, content hash."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
from conftest import requires_mearec, requires_neuron, run_python

from lfp_surrogate.cells import REGIONS, CellGeometry, get_cell_spec, list_cells


@requires_mearec
def test_catalogue_lists_default_and_bbp_models():
    cells = list_cells()
    assert "l5_ttpc1" in cells and "ball_and_stick" in cells
    bbp = [n for n, s in cells.items() if s.kind == "bbp"]
    # l5_ttpc1 plus the twelve other L5 folders
    assert len(bbp) == 13, bbp
    assert cells["l5_ttpc1"].folder.endswith("L5_TTPC1_cADpyr232_1")
    assert cells["l5_ttpc1"].celsius == 34.0
    assert not cells["L5_MC_bAC217_1"].pyramidal
    assert cells["L5_TTPC2_cADpyr232_1"].pyramidal
    # the template's synapse files are replaced by our placeholders
    names = [p.name for p in cells["l5_ttpc1"].mod_files]
    assert "ProbAMPANMDA_EMS.mod" in names
    assert all(
        "lfp_surrogate" in str(p)
        for p in cells["l5_ttpc1"].mod_files
        if p.name.startswith("Prob")
    )


@pytest.mark.parametrize("bad", ["l5", "L5_TTPC1", ""])
def test_unknown_cell_lists_known_names(bad):
    with pytest.raises(ValueError, match=r"cell must be one of .*l5_ttpc1.*got"):
        get_cell_spec(bad)


def test_cell_name_type():
    with pytest.raises(TypeError, match="cell must be str"):
        get_cell_spec(5)


@requires_neuron
def test_ball_and_stick_geometry_and_regions(ball_and_stick, tmp_path):
    geo = ball_and_stick.geometry
    assert geo.n_seg == 33
    counts = {r: int((geo.region == i).sum()) for i, r in enumerate(REGIONS)}
    assert counts == dict(
        soma=1, axon=0, basal=10, apical_trunk=9, oblique=3, tuft=10, dend=0
    )
    # soma centre at the origin, trunk along +y
    np.testing.assert_allclose(geo.mid[0], 0.0, atol=1e-9, err_msg="soma centre")
    trunk = geo.region_mask("apical_trunk")
    np.testing.assert_allclose(geo.mid[trunk, 0], 0.0, atol=1e-9, err_msg="trunk x")
    # segment length, area of a cylinder (µm, µm²)
    np.testing.assert_allclose(
        geo.length[trunk], 300.0 / 9, rtol=1e-12, err_msg="trunk segment length"
    )
    np.testing.assert_allclose(
        geo.area[trunk],
        np.pi * 3.0 * 300.0 / 9,
        rtol=1e-9,
        err_msg="trunk segment area",
    )
    seg_len = np.sqrt(np.diff(geo.x) ** 2 + np.diff(geo.y) ** 2 + np.diff(geo.z) ** 2)[
        :, 0
    ]
    np.testing.assert_allclose(
        seg_len, geo.length, rtol=1e-9, err_msg="start-end distance vs length"
    )
    # plain data: save/load without NEURON
    geo.save(tmp_path / "geo.npz")
    back = CellGeometry.load(tmp_path / "geo.npz")
    assert back.cell_hash == geo.cell_hash and back.sec_names == geo.sec_names
    for key in CellGeometry._ARRAYS:
        np.testing.assert_array_equal(getattr(back, key), getattr(geo, key))


def test_geometry_load_names_missing_field(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"bad.npz is not a cell geometry file.*d"):
        CellGeometry.load(tmp_path / "bad.npz")


def test_geometry_load_refuses_other_files(tmp_path):
    h5 = tmp_path / "x.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError) as info:
        CellGeometry.load(h5)
    assert (
        f"{h5} is not a cell geometry file: expected an .npz archive written by "
        "CellGeometry.save"
    ) in str(info.value)
    assert "pickle" not in str(info.value), "never suggest unsafe loading"
    pickled = tmp_path / "pickled.npz"
    fields = {k: np.zeros(2) for k in CellGeometry._ARRAYS}
    np.savez(pickled, header=np.array([{"name": "x"}], dtype=object), **fields)
    with pytest.raises(ValueError, match=r"its fields are not plain arrays") as info:
        CellGeometry.load(pickled)
    assert "allow_pickle" not in str(info.value)
    with pytest.raises(ValueError, match=r"expected an \.npz archive .*, got a folder"):
        CellGeometry.load(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"fname: no such file: .*none\.npz"):
        CellGeometry.load(tmp_path / "none.npz")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_usual_mode(umask, tmp_path):
    from lfp_surrogate.forward._synthetic import synthetic_geometry

    old = os.umask(umask)
    try:
        synthetic_geometry(40).save(tmp_path / "g.npz")
    finally:
        os.umask(old)
    mode = (tmp_path / "g.npz").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask, f"mode {mode:o} with umask {umask:o}"


@requires_neuron
@requires_mearec
def test_l5_ttpc1_builds_913_segments_with_stable_hash():
    code = textwrap.dedent(
        """
        import json
        import numpy as np
        from lfp_surrogate.cells import build_cell, REGIONS
        from neuron import h
        cell = build_cell("l5_ttpc1")
        geo = cell.geometry
        out = dict(
            n_seg=geo.n_seg, hash=geo.cell_hash, celsius=h.celsius,
            counts={r: int((geo.region == i).sum()) for i, r in enumerate(REGIONS)},
            height=float(geo.y.max() - geo.y.min()),
            tuft_min_y=float(geo.mid[geo.region_mask("tuft"), 1].min()),
            trunk_max_y=float(geo.mid[geo.region_mask("apical_trunk"), 1].max()),
            apical_ca=sum(
                seg.gCa_HVAbar_Ca_HVA if hasattr(seg, "Ca_HVA") else 0.0
                for sec in cell._nrn_template.apical for seg in sec),
        )
        print(json.dumps(out))
        """
    )
    import json

    first = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    again = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    assert first["n_seg"] == 913
    assert first["celsius"] == 34.0
    assert first["hash"] == again["hash"], "content hash must be reproducible"
    c = first["counts"]
    assert c["soma"] == 1 and c["axon"] == 2 and c["dend"] == 0
    assert c["basal"] > 300 and c["tuft"] > 100 and c["oblique"] > 100
    assert 900 < first["height"] < 1400, first["height"]
    assert first["tuft_min_y"] > first["trunk_max_y"] - 50
    # documented limitation: no calcium channels in the apical tree
    assert first["apical_ca"] == 0.0


@requires_neuron
def test_mechanism_cache_is_safe_under_concurrency(tmp_path):
    """Two processes compiling the same mechanisms at once both succeed."""
    import subprocess
    import sys

    code = textwrap.dedent(
        """
        from lfp_surrogate.cells import compile_mechanisms
        from lfp_surrogate.cells._catalogue import synapse_mod_files
        print(compile_mechanisms(synapse_mod_files()))
        """
    )
    env = dict(__import__("os").environ, LFP_SURROGATE_CACHE=str(tmp_path))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    libs = {o[0].strip() for o in outs}
    assert len(libs) == 1, libs
    entries = sorted(p.name for p in (tmp_path / "mechanisms").iterdir())
    assert len(entries) == 1 and not entries[0].startswith("."), entries


@requires_neuron
def test_failing_nrnivmodl_points_to_build_log(tmp_path, monkeypatch):
    from lfp_surrogate.cells import compile_mechanisms

    monkeypatch.setenv("LFP_SURROGATE_CACHE", str(tmp_path))
    bad = tmp_path / "broken.mod"
    bad.write_text("NEURON { SUFFIX broken }\nBREAKPOINT { this is not nmodl }\n")
    with pytest.raises(RuntimeError, match=r"nrnivmodl failed.*build log .*build.log"):
        compile_mechanisms([bad])


@requires_neuron
def test_missing_compiler_is_a_clear_error(tmp_path, monkeypatch):
    import shutil

    from lfp_surrogate.cells import _mechanisms, compile_mechanisms

    monkeypatch.setenv("LFP_SURROGATE_CACHE", str(tmp_path))
    monkeypatch.setattr(_mechanisms.shutil, "which", lambda name: None)
    mod = tmp_path / "x.mod"
    mod.write_text("NEURON { SUFFIX xx }\n")
    with pytest.raises(RuntimeError, match="no C compiler"):
        compile_mechanisms([mod])
    assert shutil.which is not None
