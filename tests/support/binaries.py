"""System programs some tests run (Debian packages): found, or the test is skipped, or, when
CI's REQUIRE_* variable is set, failed.

>>> haproxy = system_program("haproxy", required_by="REQUIRE_LB")
"""

from __future__ import annotations

import os
import shutil

import pytest


def system_program(name: str, *, required_by: str, package: str | None = None) -> str:
    """`name`'s path (on PATH, or in /usr/bin or /usr/sbin); skips the test when it is not
    installed, fails it when the environment sets `required_by` to 1."""
    path = shutil.which(name) or next(
        (candidate for candidate in (f"/usr/bin/{name}", f"/usr/sbin/{name}")
         if os.access(candidate, os.X_OK)), None)
    if path is None:
        install = f"apt-get install {package or name}"
        if os.environ.get(required_by) == "1":
            pytest.fail(f"{name} is required ({required_by}=1): {install}")
        pytest.skip(f"{name} is not installed ({install})")
    return path
