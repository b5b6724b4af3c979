"""Faults made for real in a child process: file modes that bind even root."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

_PR_CAPBSET_DROP = 24
# The capabilities that let root ignore file modes and ownership.
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3


def modes_apply_even_to_root() -> None:
    """Run in the child before it starts: make file modes bind it.

    CI runs the tests as root, and root ignores modes, so a 0500 directory is no test at all.
    A read-only bind mount needs privileges CI may not give, and another user (nobody) cannot
    reach a Python installed under /root. So a root child drops, from its capability bounding
    set, the capabilities that override modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
    CAP_FOWNER): after exec it is still uid 0 but the kernel checks modes for it as for anyone.
    Any other user is bound by modes already. `assert_cannot_write` proves it either way.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def assert_cannot_write(directory: Path) -> None:
    """The premise: the child really cannot create a file in `directory`."""
    probe = f"open({str(directory / 'probe')!r}, 'w')"
    child = subprocess.run(
        [sys.executable, "-c", probe],
        preexec_fn=modes_apply_even_to_root,
        capture_output=True,
        text=True,
    )
    assert child.returncode == 1 and "PermissionError" in child.stderr, child.stderr
