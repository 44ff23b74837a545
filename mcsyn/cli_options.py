"""Option types and the option sets that several ``mcsyn`` commands share (see :mod:`mcsyn.cli`)."""
from __future__ import annotations

import argparse
import re

from .budget import DEFAULT_MAX_STEPS

# ======================================================================================================
# argument types

def _int_at_least(low):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {low}")
        return v
    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


def _drug(text):
    from .drugs import parse_drug_option
    try:
        return parse_drug_option(text)
    except (ValueError, KeyError) as exc:
        raise argparse.ArgumentTypeError(_message(exc)) from None


def _setting(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. geometry.domain_radius_um=8)")
    key, value = (s.strip() for s in text.split("=", 1))
    if not key:
        raise argparse.ArgumentTypeError(f"{text!r} has no key before '='")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    return key, value


def _quantiles(text):
    try:
        qs = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not qs or any(not 0 < q < 1 for q in qs):
        raise argparse.ArgumentTypeError(f"{text!r}: quantiles must be numbers in (0, 1), e.g. 0.05,0.25,0.75,0.95")
    return qs


def _percent(text):
    try:
        v = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (a percentage, e.g. 80)") from None
    if not 0 < v < 100:
        raise argparse.ArgumentTypeError(f"{text!r}: an occupancy must be strictly between 0 and 100 %")
    return v


def _max_steps(text):
    if text.strip().lower() == "none":
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of molecule-steps (e.g. 1e11) or 'none'") from None
    if not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: the work limit must be a finite number > 0, or 'none'")
    return v


def _message(exc) -> str:
    return exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)


# ======================================================================================================
# the parser

class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Adds "(default: X)" only where it says something: not to a help text that already names its
    default, nor for a default of None or False (a flag, or "chosen at run time")."""

    def _get_help_string(self, action):
        text = action.help or ""
        flag = action.nargs == 0            # store_true / store_false: the default says nothing
        if "default" in text or flag or action.default is None or action.default is False or action.default == []:
            return text
        return super()._get_help_string(action)



def _add_ensemble_options(p):
    p.add_argument("target", metavar="CONFIG|PRESET",
                   help="a preset name (see 'mcsyn presets') or a TOML configuration")
    _add_run_options(p)


def _add_run_options(p, out_required: bool = True):
    """The options of an ensemble run, without the CONFIG|PRESET it runs."""
    p.add_argument("--runs", type=_positive_int, default=100, help="runs per condition")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="ensemble seed")
    p.add_argument("--workers", type=_positive_int, default=None, help="threads or processes (default: all cores)")
    p.add_argument("--backend", choices=("threads", "processes"), default="threads", help="local parallel backend")
    p.add_argument("--scheduler", metavar="ADDR", default=None,
                   help="run on this dask.distributed scheduler (e.g. tcp://host:8786)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="runs per task (default: automatic)")
    p.add_argument("--mode", choices=("equilibrium", "kinetic", "acute"), default=None,
                   help="drug mode (default: the configuration's, or equilibrium)")
    p.add_argument("--clamp", metavar="MV", default=None,
                   help="record currents under a voltage clamp at this holding potential (e.g. -70mV)")
    p.add_argument("--mg", metavar="MM", default=None,
                   help="external [Mg2+] of the clamp (e.g. 1mM; default: the library's 1 mM)")
    p.add_argument("--max-steps", type=_max_steps, default=DEFAULT_MAX_STEPS, metavar="N",
                   help="refuse a run estimated above N molecule-steps plus site events (mcsyn.budget); "
                        "'none': no limit")
    p.add_argument("--set", dest="settings", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the preset/configuration, e.g. timing.duration_ms=100")
    p.add_argument("--observable", dest="observables", action="append", default=None, metavar="NAME",
                   help="time series for the time-course statistics (repeat; default: the aggregates)")
    p.add_argument("--quantiles", type=_quantiles, default=(0.05, 0.25, 0.75, 0.95),
                   help="time-course quantiles besides the median (default: 0.05,0.25,0.75,0.95)")
    p.add_argument("--time-points", type=_positive_int, default=501,
                   help="at most this many stored time points per run")
    p.add_argument("--no-traces", action="store_true", help="store no traces (no time-course quantiles; no resume)")
    p.add_argument("--out", required=out_required, default=None, metavar="DIR", help="result directory")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="finish an interrupted ensemble in DIR")
    g.add_argument("--overwrite", action="store_true", help="replace an existing result in DIR")
    g2 = p.add_mutually_exclusive_group()
    g2.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
    g2.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")


_SIGNED_VALUE = re.compile(r"^-[\d.]")


def _join_signed_values(argv: list) -> list:
    """``--clamp -70mV`` as ``--clamp=-70mV``: argparse reads a value that starts with '-' and is
    not a plain number as an option and reports "expected one argument"."""
    out, i = [], 0
    while i < len(argv):
        tok = argv[i]
        if tok.startswith("--") and "=" not in tok and i + 1 < len(argv) and _SIGNED_VALUE.match(argv[i + 1]):
            out.append(f"{tok}={argv[i + 1]}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out
