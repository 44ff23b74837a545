"""Helpers the command-line tests share: run ``mcsyn`` in-process and read what it printed."""
import pytest

from mcsyn import cli


def run(argv, capsys):
    """``(exit status, stdout, stderr)`` of ``mcsyn ARGV``."""
    status = cli.main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


def usage_error(argv, capsys):
    """The stderr of ``mcsyn ARGV``, which must exit with argparse's status 2."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err
