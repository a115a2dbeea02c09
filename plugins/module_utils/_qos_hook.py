# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install or remove the libvirt hook that builds per-application traffic classes at domain start.

The hook is ``_tc.py`` itself with a shebang: one implementation for the hook and for the
``domain`` module's live changes. It is written under a temporary name and renamed into place.
libvirt looks for hook scripts when it starts or reloads, so a newly installed hook is followed
by a reload of the daemon (which leaves running guests alone).
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import tempfile

from . import _tc
from ._errors import VirtforgeError
from ._image.common import read_text

HOOK_PATH = "/etc/libvirt/hooks/qemu.d/virtforge-qos"
HEADER = ("# Installed by virtforge.libvirt.qos_hook: builds the per-application traffic classes stored in a\n"
          "# domain's metadata (interfaces[].app_qos) on its taps when it starts. Do not edit; re-run the module.\n")
DAEMONS = ("virtqemud", "libvirtd")


def hook_text(python):
    return "#!%s\n%s%s" % (python, HEADER, inspect.getsource(_tc))


def _write_atomic(path, text):
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".virtforge-qos.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o755)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def reload_daemon(run=None, pid_dir="/run"):
    """Make libvirt look for hooks again: systemctl reload where systemd runs, else SIGHUP by pid file."""
    run = run or (lambda argv: subprocess.run(argv, capture_output=True, text=True, check=False))
    if os.path.isdir("/run/systemd/system"):
        for daemon in DAEMONS:
            if run(["systemctl", "is-active", "--quiet", daemon + ".service"]).returncode == 0:
                res = run(["systemctl", "reload", daemon + ".service"])
                if res.returncode != 0:
                    raise VirtforgeError("systemctl reload %s failed: %s" % (daemon, res.stderr.strip()),
                                         option="reload")
                return daemon
    for daemon in DAEMONS:
        try:
            with open(os.path.join(pid_dir, daemon + ".pid")) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            continue
        return daemon
    raise VirtforgeError("no running libvirtd or virtqemud found to reload", option="reload",
                         fix="Start libvirt, or reload it yourself after installing the hook")


def run(params, check_mode, run_cmd=None):
    path = params["path"]
    have = read_text(path)
    if params["state"] == "absent":
        result = dict(changed=have is not None, path=path, reloaded=None,
                      diff=dict(before=have or "", after="", before_header=path, after_header=path))
        if have is not None and not check_mode:
            os.unlink(path)
        return result
    want = hook_text(params["python"])
    result = dict(changed=have != want, path=path, reloaded=None,
                  diff=dict(before=have or "", after=want, before_header=path, after_header=path))
    if result["changed"] and not check_mode:
        _write_atomic(path, want)
        if have is None and params["reload"]:
            result["reloaded"] = reload_daemon(run_cmd)
    return result
