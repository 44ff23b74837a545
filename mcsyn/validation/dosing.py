"""Published PET occupancies after a dose, computed from the library's pharmacokinetics and Ki
(:mod:`mcsyn.pharmacokinetics.pet`) without fitting either to the studies.

A row passes within the tolerance the comparison states (set before comparing: ±10 occupancy
points, or 2 SD of the study where that is wider); outside it the row is a documented discrepancy
with the reason the comparison gives (in-vitro Ki against in-vivo occupancy, label PK against the
study's subjects), never a tuned value. A row that cannot be computed (a drug without the PK data it
needs) is a documented discrepancy too, naming the missing field."""
from __future__ import annotations

import math

from ..pharmacokinetics import pet
from .framework import Check, register


def _pet_row(name, expected, predicted, tolerance, passed, computed, citation, note, measured_range=None):
    lower, upper = ((measured_range[0] - tolerance, measured_range[1] + tolerance) if measured_range
                    else (expected - tolerance, expected + tolerance))
    finite = computed and math.isfinite(predicted)
    verdict = "pass" if finite and passed else "discrepancy"
    if measured_range:
        what = f"measured range [{measured_range[0]:.0%}, {measured_range[1]:.0%}] ± {tolerance:.0%}"
    else:
        what = f"± {tolerance:.0%} occupancy"
    return Check(name, "published", float(expected) * 100, float(predicted) * 100 if finite else float("nan"),
                 what, verdict, citation, note, "%", float("nan"), lower * 100, upper * 100)


@register("published.volkow_methylphenidate_dat", "published")
def check_volkow_methylphenidate(ctx):
    """DAT occupancy 2 h after oral methylphenidate, 5-60 mg (Volkow et al. 1998): the label PK
    (70 kg) and the library's DAT Ki against PET."""
    rows = []
    for r in pet.volkow1998_methylphenidate_dat().itertuples():
        rows.append(_pet_row(f"published.volkow_methylphenidate_dat.{r.dose_mg:g}mg", r.measured_occupancy,
                             r.predicted_occupancy, r.tolerance, bool(r.passed), True, r.study,
                             r.note or f"free brain {r.brain_free_nM:.3g} nM at {r.time_after_dose_h:g} h"))
    return rows


@register("published.meyer_ssri_sert", "published")
def check_meyer_ssri(ctx):
    """SERT occupancy at steady state of clinical SSRI doses (Meyer et al. 2001, 2004): the mean over
    the dosing interval from the library's PK and Ki against PET (trough and peak in the note)."""
    rows = []
    for r in pet.meyer_ssri_sert().itertuples():
        dose = f"{r.dose_mg_per_day:g}mg" if math.isfinite(r.dose_mg_per_day) else "serum"
        rng = r.measured_range if isinstance(r.measured_range, tuple) else None
        expected = r.measured_occupancy if math.isfinite(r.measured_occupancy) else sum(rng) / 2
        note = r.note or (f"trough {r.predicted_trough:.0%}, peak {r.predicted_peak:.0%}"
                          if math.isfinite(r.predicted_trough) else "")
        year = next(w for w in r.study.replace(",", " ").split() if w.isdigit() and len(w) == 4)
        rows.append(_pet_row(f"published.meyer_ssri_sert.{year}.{r.drug}.{dose}", expected, r.predicted_occupancy,
                             r.tolerance, bool(r.passed), bool(r.computed), r.study, note, rng))
    return rows
