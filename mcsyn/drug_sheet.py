"""One drug of the library as text (``mcsyn drugs NAME``): class, mechanism and sources, the Ki at
each target with the free concentration that gives a stated occupancy, the variants, and the
occupancies measured in patients (PET) where the library cites them, each converted to the free
concentration that gives it in this model.

The conversion is the competitive equilibrium of the drug alone, C = Ki·θ/(1 − θ)
(:func:`mcsyn.drugs.concentration_for_occupancy`): derived [D], not a measured free level.
"""
from __future__ import annotations

import re
import textwrap

import pandas as pd

from . import library
from .drugs import concentration_for_occupancy
from .errors import ModelError
from .labels import format_dose

# "83%" or "60-77%" (a range of measured occupancies)
_OCCUPANCY = re.compile(r"\s*([0-9.]+)\s*(?:[-–]\s*([0-9.]+)\s*)?%\s*")


def _wrap(text: str, indent: str, width: int = 100) -> str:
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ")


def drug_list() -> str:
    """Every drug of the library: class, mechanism and Ki per transporter."""
    rows = []
    for name in library.names("drugs"):
        d = library.drug(name)
        ki = ", ".join(f"{t} {format_dose(k)}" for t, k in d.ki_M.items())
        rows.append({"drug": name, "class": d.drug_class, "mechanism": d.mechanism, "Ki": ki})
    return (pd.DataFrame(rows).to_string(index=False)
            + "\n\n'mcsyn drugs NAME' shows one drug: sources, variants, occupancy and concentrations")


def target_table(drug, occupancies_percent) -> pd.DataFrame:
    """Per target: its kind, the Ki and, per occupancy (in %), the free concentration that gives it."""
    rows = []
    for target, ki in drug.targets().items():
        kind = ("off-target receptor" if target in drug.off_targets_M else "enzyme" if target == "MAO" else
                "transporter" if library.site_kind(target) == "transporters" else "receptor")
        row = {"target": target, "kind": kind, "Ki": format_dose(ki)}
        if drug.efficacy:
            row["efficacy"] = f"{drug.efficacy.get(target, 0.0):g}"
        for occ in occupancies_percent:
            row[f"free conc. for {occ:g} %"] = format_dose(concentration_for_occupancy(drug, target, occ / 100.0))
        rows.append(row)
    return pd.DataFrame(rows)


def clinical_occupancies(drug) -> list:
    """The ``[<drug>.clinical]`` entries of the library (measured occupancy at a clinical dose),
    each with ``low_M``/``high_M``: the free concentrations that give the measured occupancy (or the
    ends of its range) in this model."""
    table = library.raw("drugs")[drug.name].get("clinical", {})
    out = []
    for target, entries in table.items():
        for e in entries:
            field = f"drugs.{drug.name}.clinical.{target}"
            m = _OCCUPANCY.fullmatch(str(e.get("occupancy", "")))
            if m is None:
                raise ModelError(f"{field}.occupancy", e.get("occupancy"), "must be 'N%' or 'N-M%'")
            lo, hi = float(m.group(1)), float(m.group(2) or m.group(1))
            out.append({"target": target, "dose": e.get("dose", ""), "occupancy": e["occupancy"],
                        "low_M": concentration_for_occupancy(drug, target, lo / 100.0),
                        "high_M": concentration_for_occupancy(drug, target, hi / 100.0),
                        "source": e.get("source", "")})
    return out


def describe(name: str, occupancies_percent=(50.0, 80.0)) -> str:
    """The text of ``mcsyn drugs NAME``."""
    drug = library.drug(name, "NAME")
    raw = library.raw("drugs")[drug.name]
    lines = [f"{drug.label}: {drug.drug_class}, {drug.mechanism}", _wrap(f"source: {drug.source}", "  "),
             "", "Ki at each target, and the free concentration at which the drug alone occupies the stated",
             "fraction of it (competitive equilibrium, C = Ki x theta/(1 - theta)):",
             target_table(drug, occupancies_percent).to_string(index=False)]
    variants = sorted(raw.get("variants", {}))
    if variants:
        lines += ["", "variants (select as NAME@VARIANT):"]
        for v in variants:
            vd = library.drug(f"{drug.name}@{v}")
            lines.append(f"  {drug.name}@{v}: Ki " + ", ".join(f"{t} {format_dose(k)}" for t, k in vd.targets().items()))
            lines.append(_wrap(f"source: {raw['variants'][v].get('source', '')}", "    "))
    clinical = clinical_occupancies(drug)
    lines.append("")
    if not clinical:
        lines.append("clinical occupancy: no measured occupancy in the library for this drug")
    else:
        lines.append("clinical occupancy (PET), and the free concentration that gives it in this model [D]:")
        for c in clinical:
            conc = " - ".join(dict.fromkeys(format_dose(x) for x in (c["low_M"], c["high_M"])))
            lines.append(f"  {c['target']} at {c['dose']}: {c['occupancy']} occupied -> {conc} free")
            lines.append(_wrap(c["source"], "      "))
    return "\n".join(lines)
