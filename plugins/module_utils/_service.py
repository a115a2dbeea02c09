# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host daemons for the host-side engines (libvirt_config, multipath).

Under systemd one ``systemctl show`` reads every unit an engine cares about, and ``systemctl`` runs only for
a change. Without systemd (containers, other init systems) a daemon is found with ``pgrep`` and started by
its own command. When a process started is read from /proc, to tell whether it predates its configuration.
"""

from __future__ import annotations

import os
import time

from ._errors import VirtforgeError

SHOW_PROPERTIES = "Id,LoadState,UnitFileState,ActiveState,MainPID"


def uses_systemd(name, run_dir="/run/systemd/system"):
    """``name`` is auto, systemd or direct; auto means systemd when it runs (as sd_booted() decides)."""
    if name == "auto":
        return os.path.isdir(run_dir)
    return name == "systemd"


def parse_systemctl_show(text, units):
    """``systemctl show -p ... u1 u2`` prints one block per unit, in the order asked, blank-line separated."""
    blocks = []
    current = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, _sep, value = line.partition("=")
        current[key] = value
    if current:
        blocks.append(current)
    by_id = {block.get("Id"): block for block in blocks if block.get("Id")}
    out = {}
    for index, unit in enumerate(units):
        block = by_id.get(unit)
        if block is None and index < len(blocks) and not blocks[index].get("Id"):
            block = blocks[index]
        out[unit] = block or {}
    return out


def unit_actions(states, wanted, check_mode=False):
    """systemctl verbs, in order, that bring each unit to ``wanted`` = [(unit, enabled, active)] (None: leave).

    Returns (actions, warnings). A unit that is not installed is an error, except in check mode, where the
    package that ships it may be installed by an earlier task of the same run (not run in check mode either):
    then the verbs it would need are planned, with a warning.
    """
    actions, warnings = [], []
    for unit, enabled, active in wanted:
        state = states.get(unit, {})
        if state.get("LoadState") == "not-found":
            if not (enabled or active):
                continue
            if not check_mode:
                raise VirtforgeError("the systemd unit %s does not exist on this host" % unit,
                                     fix="Install the package that ships it")
            warnings.append("%s is not installed yet: it would be enabled and started once it is" % unit)
            state = {}
        file_state = state.get("UnitFileState", "")
        if enabled is True and file_state not in ("enabled", "enabled-runtime", "static", "indirect", "alias"):
            actions.append(("enable", unit))
        elif enabled is False and file_state in ("enabled", "enabled-runtime"):
            actions.append(("disable", unit))
        if active is True and not is_active(state):
            actions.append(("start", unit))
        elif active is False and is_active(state):
            actions.append(("stop", unit))
    return actions, warnings


def is_active(state):
    return state.get("ActiveState") in ("active", "activating", "reloading")


def main_pid(state):
    """The main process of a running service unit, or 0."""
    pid = state.get("MainPID", "0")
    return int(pid) if pid.isdigit() and state.get("ActiveState") == "active" else 0


class Systemctl(object):
    def __init__(self, runner):
        self.runner = runner
        self.path = runner.which("systemctl")

    def show(self, units):
        _rc, out, _err = self.runner.run([self.path, "show", "-p", SHOW_PROPERTIES] + list(units),
                                         what="systemctl show")
        return parse_systemctl_show(out, units)

    def apply(self, actions, check_mode):
        """Runs the verbs (not in check mode); returns them as 'verb unit' strings."""
        for verb, unit in actions:
            if not check_mode:
                self.runner.run([self.path, verb, unit], what="systemctl %s %s" % (verb, unit))
        return ["%s %s" % (verb, unit) for verb, unit in actions]


def pgrep(runner, name):
    """The oldest process named exactly ``name``, or 0."""
    rc, out, err = runner.run([runner.which("pgrep"), "-o", "-x", name], check=False)
    if rc not in (0, 1):
        raise VirtforgeError("pgrep failed (exit %d): %s" % (rc, (err or "").strip()))
    return int(out.split()[0]) if rc == 0 and out.split() else 0


def process_start_time(pid, proc="/proc"):
    """Seconds since the epoch when process ``pid`` started (to one clock tick), or None when it is gone.

    The start is counted in clock ticks since boot (/proc/PID/stat field 22). The boot time is taken as now
    minus /proc/uptime (1/100 s), not /proc/stat's btime, which is cut to whole seconds: a daemon restarted
    half a second after its file was written would otherwise look older than the file.
    """
    try:
        with open(os.path.join(proc, str(pid), "stat")) as handle:
            stat = handle.read()
        with open(os.path.join(proc, "uptime")) as handle:
            boot = time.time() - float(handle.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    # the command name (field 2) may hold spaces and parentheses: count fields after the last ')'
    fields = stat.rsplit(")", 1)[1].split()
    return boot + int(fields[19]) / float(os.sysconf("SC_CLK_TCK"))


def older_than(started, mtime):
    """Whether a process that started at ``started`` predates a file changed at ``mtime`` (one tick's slack)."""
    return mtime > started + 1.0 / os.sysconf("SC_CLK_TCK")
