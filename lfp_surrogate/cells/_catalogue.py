"""The catalogue of named cell models (plain, picklable descriptions)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: Name of the default cell.
DEFAULT_CELL = "l5_ttpc1"

_BBP_DEFAULT = "L5_TTPC1_cADpyr232_1"
_MOD_DIR = Path(__file__).parent / "mod"


@dataclass(frozen=True)
class CellSpec:
    """Description of a named cell model; building it is a separate step.

    Parameters
    ----------
    name : str
        Catalogue name (``"l5_ttpc1"``, ``"ball_and_stick"`` or a Blue Brain
        folder name such as ``"L5_MC_bAC217_1"``).
    kind : str
        ``"bbp"`` for a Blue Brain template, ``"ball_and_stick"`` for our own.
    folder : str
        Model folder (Blue Brain cells only), inside the installed ``MEArec``.
    pyramidal : bool
        Whether the cell has an apical tree (regions trunk/oblique/tuft).
    celsius : float
        Temperature (°C) at which the model is run.
    description : str
        One line for listings.
    """

    name: str
    kind: str
    folder: str = ""
    pyramidal: bool = True
    celsius: float = 34.0
    description: str = ""

    @property
    def mod_files(self) -> list[Path]:
        """The NMODL files this model needs, channels first."""
        if self.kind == "ball_and_stick":
            return []
        folder = Path(self.folder) / "mechanisms"
        channels = sorted(
            p for p in folder.glob("*.mod") if not p.name.startswith("Prob")
        )
        # name-only placeholders for the template's (disabled) synapses
        return channels + [
            _MOD_DIR / "ProbAMPANMDA_EMS.mod",
            _MOD_DIR / "ProbGABAAB_EMS.mod",
        ]

    @property
    def template_name(self) -> str:
        """The hoc template's name (Blue Brain cells only)."""
        text = (Path(self.folder) / "template.hoc").read_text()
        return re.findall(r"begintemplate\s+(\w+)", text)[-1]


def synapse_mod_files() -> list[Path]:
    """The package's own synapse mechanisms (NMDA)."""
    return [_MOD_DIR / "LfpsNMDA.mod"]


def _bbp_root() -> Path:
    try:
        import MEArec
    except ImportError:
        raise ImportError(
            "the Blue Brain cell models come from the package `mearec`, which "
            "is not installed; install it with `pip install mearec` (import "
            "name MEArec)"
        ) from None
    root = Path(MEArec.__file__).parent / "cell_models" / "bbp"
    if not root.is_dir():
        raise FileNotFoundError(
            f"the installed MEArec ({MEArec.__file__}) has no folder {root}; "
            f"reinstall it with `pip install --force-reinstall mearec`"
        )
    return root


def _bbp_spec(folder: Path, name: str) -> CellSpec:
    mtype = folder.name.split("_")[1]
    pyramidal = "PC" in mtype
    desc = f"Blue Brain L5 {mtype} ({folder.name})"
    if name == DEFAULT_CELL:
        desc = f"default: {desc}, thick-tufted pyramidal"
    return CellSpec(
        name=name,
        kind="bbp",
        folder=str(folder),
        pyramidal=pyramidal,
        celsius=_bbp_celsius(folder),
        description=desc,
    )


def _bbp_celsius(folder: Path) -> float:
    text = (folder / "constants.hoc").read_text()
    match = re.search(r"^\s*celsius\s*=\s*([\d.]+)", text, re.MULTILINE)
    return float(match.group(1)) if match else 34.0


def list_cells(*, include_bbp: bool = True) -> dict[str, CellSpec]:
    """All named cells, by name.

    Parameters
    ----------
    include_bbp : bool
        Include the Blue Brain models (needs ``mearec`` installed).

    Returns
    -------
    cells : dict of str to CellSpec
        ``l5_ttpc1`` (the default), ``ball_and_stick`` and the other Blue
        Brain L5 models by their folder names.
    """
    cells = {}
    if include_bbp:
        root = _bbp_root()
        cells[DEFAULT_CELL] = _bbp_spec(root / _BBP_DEFAULT, DEFAULT_CELL)
    cells["ball_and_stick"] = CellSpec(
        name="ball_and_stick",
        kind="ball_and_stick",
        pyramidal=True,
        celsius=6.3,  # Hodgkin-Huxley's squid temperature: the HH soma fires
        description="small test cell: HH soma, passive trunk, tuft, oblique, "
        "basal dendrites",
    )
    if include_bbp:
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and folder.name != _BBP_DEFAULT:
                cells[folder.name] = _bbp_spec(folder, folder.name)
    return cells


def get_cell_spec(name) -> CellSpec:
    """The :class:`CellSpec` of a named cell, with a clear error if unknown."""
    from .._validation import check_type

    if isinstance(name, CellSpec):
        return name
    check_type(name, str, "cell")
    if name == "ball_and_stick":
        return list_cells(include_bbp=False)[name]
    cells = list_cells()
    if name not in cells:
        raise ValueError(
            f"cell must be one of {', '.join(cells)}; got {name!r}. "
            f"`lfp-surrogate cells` lists them."
        )
    return cells[name]
