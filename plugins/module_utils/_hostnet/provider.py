# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Provider interface, the steps providers render, and provider detection.

A provider turns the canonical model into *steps*, plain JSON-serialisable dicts:

* ``{"argv": [...]}``                         run a command (argument list, never a shell string)
* ``{"write": path, "content": text, "mode": 0o644}``  write a file atomically (temp name + rename)
* ``{"remove": path}``                        remove a file

The same renderer produces the steps that apply a change and the steps that undo it (apply the
snapshot taken before), so the rollback watchdog only has to execute a list of steps.
"""

from __future__ import annotations

import json
import os

from .._engine import Change
from .._errors import VirtforgeError
from .._image.common import atomic_write_text
from . import model


class Provider(object):
    """One way of configuring host networking. Subclasses implement the hooks."""

    name = None
    #: True when the provider writes configuration that survives a reboot
    persistent = False

    def __init__(self, runner, netns=None, root="/"):
        self.runner = runner
        self.netns = netns
        self.root = root

    # ---- reading -------------------------------------------------------------------------
    def ip(self, *args):
        """``ip`` argv, inside ``netns`` when set."""
        argv = ["ip"]
        if self.netns:
            argv += ["-n", self.netns]
        return argv + list(args)

    def link(self, ifname):
        """The kernel's view of a link (``ip -d -j link show``), or None when it does not exist."""
        rc, out, err = self.runner.run(self.ip("-d", "-j", "link", "show", "dev", ifname), check=False)
        if rc != 0:
            if "does not exist" in (err or "") or "Cannot find device" in (err or ""):
                return None
            raise VirtforgeError("ip link show %s failed: %s" % (ifname, (err or out).strip()))
        data = json.loads(out or "[]")
        return data[0] if data else None

    def link_kind(self, ifname):
        info = self.link(ifname)
        if info is None:
            return None
        return (info.get("linkinfo") or {}).get("info_kind") or "device"

    def master_of(self, ifname):
        """(master name, master kind) of a link, (None, None) when it has none."""
        info = self.link(ifname)
        if info is None or not info.get("master"):
            return None, None
        return info["master"], self.link_kind(info["master"])

    def read(self, name, kind):
        """Current model: ``{"exists": bool, "kind": str, "config": {...}, "active": bool}``."""
        raise NotImplementedError

    def apply_steps(self, want, current, changes):
        """Steps that take the system from ``current`` to ``want`` (``changes`` from the plan)."""
        raise NotImplementedError

    def check_system(self, want, current):
        """Provider-specific checks against the system before anything changes (raise VirtforgeError)."""

    @classmethod
    def detect(cls, runner, root="/"):  # pragma: no cover - overridden
        return False


def ordered_changes(changes):
    return {c.key: c for c in changes}


def predicted(want, current):
    """The state after applying ``want`` to ``current``: what the rollback has to undo."""
    if want["state"] == "absent":
        return dict(exists=False, kind=want["kind"], config={}, active=False)
    config = dict(current.get("config") or {}) if current.get("exists") else {}
    config.update(want["config"])
    return dict(exists=True, kind=want["kind"], config=config, active=True)


def as_want(name, kind, state):
    """A current/snapshot state seen as a desired one (to render the steps that restore it)."""
    if not state.get("exists"):
        return dict(name=name, kind=kind, state="absent", config={})
    return dict(name=name, kind=kind, state="present", config=dict(state.get("config") or {}),
                active=state.get("active", True))


def compare(want, current):
    """The plan's changes: only the keys the user set, in the model's order."""
    name, kind = want["name"], want["kind"]
    if want["state"] == "absent":
        if current.get("exists"):
            return [Change("interface", model.describe(kind, name, current).strip(), None, group=kind,
                           key="interface")]
        return []
    if not current.get("exists"):
        return [Change("interface", None, "%s %s" % (kind, name), group=kind, key="interface")] + [
            Change(key, None, want["config"][key], group=kind, key=key)
            for key in model.keys(kind) if want["config"].get(key) is not None]
    have = current.get("config") or {}
    changes = []
    for key in model.keys(kind):
        if key not in want["config"]:
            continue
        value = want["config"][key]
        if have.get(key) != value:
            changes.append(Change(key, have.get(key), value, group=kind, key=key))
    if want.get("active", True) and not current.get("active"):
        changes.append(Change("active", False, True, group=kind, key="active"))
    return changes


def detect(runner, root="/"):
    """NetworkManager running → networkmanager; /etc/network/interfaces → ifupdown; else iproute2."""
    from . import ifupdown, networkmanager  # noqa: PLC0415

    if networkmanager.NetworkManagerProvider.detect(runner, root):
        return "networkmanager"
    if ifupdown.IfupdownProvider.detect(runner, root):
        return "ifupdown"
    return "iproute2"


def provider_class(name):
    from . import ifupdown, iproute2, networkmanager  # noqa: PLC0415

    return dict(iproute2=iproute2.Iproute2Provider, ifupdown=ifupdown.IfupdownProvider,
                networkmanager=networkmanager.NetworkManagerProvider)[name]


def run_steps(runner, steps, stop_on_error=True):
    """Execute steps in the module (through module.run_command). Returns one result per step."""
    results = []
    for step in steps:
        if "argv" in step:
            rc, out, err = runner.run(step["argv"], check=False)
            results.append(dict(step=step, rc=rc, stderr=(err or "").strip()[-2000:]))
            if rc != 0 and not step.get("ignore_errors") and stop_on_error:
                raise VirtforgeError("%s failed (exit %d): %s" % (" ".join(step["argv"]), rc, (err or out).strip()),
                                     results=results)
        elif "write" in step:
            atomic_write_text(step["write"], step["content"], step.get("mode", 0o644))
            results.append(dict(step=dict(write=step["write"]), rc=0))
        elif "remove" in step:
            if os.path.exists(step["remove"]):
                os.unlink(step["remove"])
            results.append(dict(step=step, rc=0))
    return results


def describe_steps(steps):
    """Human-readable one-liners (for messages and the ``commands`` return value)."""
    out = []
    for step in steps:
        if "argv" in step:
            out.append(" ".join(step["argv"]))
        elif "write" in step:
            out.append("write %s" % step["write"])
        elif "remove" in step:
            out.append("remove %s" % step["remove"])
    return out
