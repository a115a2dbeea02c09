# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running external tools: argument lists only, errors that say which tool failed and why."""

from __future__ import annotations

import os

from ._errors import VirtforgeError


def guestfs_environment(hardware_virtualization):
    """Environment for libguestfs tools: direct backend, and TCG where KVM is not usable."""
    env = {"LIBGUESTFS_BACKEND": os.environ.get("LIBGUESTFS_BACKEND", "direct")}
    if not hardware_virtualization:
        env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
    return env


class Runner(object):
    """Runs commands through ``module.run_command`` with an argument list."""

    def __init__(self, module, environ=None):
        self.module = module
        self.environ = dict(environ or {})

    def which(self, tool, required=True):
        path = self.module.get_bin_path(tool, required=False)
        if path is None and required:
            raise VirtforgeError(
                "the command %r is not installed on %s" % (tool, os.uname()[1]),
                fix="Install it (see bindep.txt for package names)")
        return path

    def run(self, argv, check=True, data=None, environ=None, cwd=None, what=None):
        if isinstance(argv, str):  # pragma: no cover - programming error
            raise TypeError("Runner.run takes an argument list, not a string")
        env = dict(self.environ)
        env.update(environ or {})
        rc, out, err = self.module.run_command(
            [str(a) for a in argv], data=data, environ_update=env, cwd=cwd, binary_data=data is not None)
        if check and rc != 0:
            tail = (err or out or "").strip().splitlines()[-15:]
            raise VirtforgeError(
                "%s failed (exit %d): %s" % (what or os.path.basename(str(argv[0])), rc, "\n".join(tail)),
                command=[str(a) for a in argv], rc=rc)
        return rc, out, err
