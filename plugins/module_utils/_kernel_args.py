# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel command-line arguments of the next boot, through the bootloader tools of the system.

Two providers behind one interface (``read``, ``apply``):

* ``grub`` (Debian, Ubuntu): a file of its own in ``/etc/default/grub.d`` (grub-mkconfig reads every
  ``*.cfg`` there after ``/etc/default/grub``, which is never edited), then ``update-grub`` (or
  ``grub-mkconfig -o``);
* ``grubby`` (RHEL, Fedora, their rebuilds): ``grubby --update-kernel=ALL --args/--remove-args``, which
  also keeps the defaults for kernels installed later.

The running kernel's ``/proc/cmdline`` says whether a reboot is still needed. Paths are read relative to
``root`` so unit tests run on fake trees.
"""

from __future__ import annotations

import os
import re
import shlex

from ._errors import VirtforgeError
from ._host import _path, read_text
from ._image.common import atomic_write_text

GRUB_D_FILE = "/etc/default/grub.d/90-virtforge.cfg"
_ARG_RE = re.compile(r"^[A-Za-z0-9_.\-]+(=[A-Za-z0-9_.,:/+\-=]*)?$")
_GRUB_LINE_RE = re.compile(r'^\s*GRUB_CMDLINE_LINUX(?:_DEFAULT)?=(["\']?)(.*)\1\s*$')
_HEADER = ("# Managed by virtforge.libvirt kernel_args: kernel arguments of the next boot.\n"
           "# Changes here are overwritten.\n")


def key(arg):
    return arg.split("=", 1)[0]


def validate(args):
    for index, arg in enumerate(args):
        if not _ARG_RE.match(arg or ""):
            raise VirtforgeError("%r is not a kernel argument this module writes" % (arg,), "args[%d]" % index,
                                 fix="Give one name or name=value per item (letters, digits and _ . - , : / + =); "
                                     "no spaces, quotes or $")
    return list(args)


def merge(current, wanted, present):
    """``current`` with ``wanted`` added (same name: the new value replaces the old) or removed."""
    if present:
        out = list(current)
        for arg in wanted:
            if arg in out:
                continue
            same = [i for i, a in enumerate(out) if key(a) == key(arg)]
            if same:
                out[same[0]] = arg
                out = [a for i, a in enumerate(out) if i not in same[1:]]
            else:
                out.append(arg)
        return out
    names = {a for a in wanted if "=" not in a}
    return [a for a in current if a not in wanted and key(a) not in names]


class GrubProvider(object):
    name = "grub"

    def __init__(self, runner, root="/", path=GRUB_D_FILE):
        self.runner, self.root, self.path = runner, root, path

    @classmethod
    def usable(cls, runner, root="/"):
        return os.path.exists(_path(root, "/etc/default/grub")) and bool(
            runner.which("update-grub", required=False) or cls._mkconfig(runner))

    @staticmethod
    def _mkconfig(runner):
        return runner.which("grub-mkconfig", required=False) or runner.which("grub2-mkconfig", required=False)

    def _own(self):
        text = read_text(self.root, self.path) or ""
        for line in text.splitlines():
            match = re.match(r'^GRUB_CMDLINE_LINUX="\$GRUB_CMDLINE_LINUX (.*)"$', line.strip())
            if match:
                return match.group(1).split()
        return []

    def _system(self):
        out = []
        for line in (read_text(self.root, "/etc/default/grub") or "").splitlines():
            match = _GRUB_LINE_RE.match(line)
            if match:
                try:
                    out.extend(shlex.split(match.group(2)))
                except ValueError:
                    out.extend(match.group(2).split())
        return out

    def read(self):
        """(arguments this module manages, arguments set elsewhere)"""
        return self._own(), self._system()

    def render(self, args):
        if not args:
            return ""
        return _HEADER + 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX %s"\n' % " ".join(args)

    def apply(self, own_before, own_after):
        path = _path(self.root, self.path)
        if own_after:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write_text(path, self.render(own_after), 0o644)
        elif os.path.exists(path):
            os.unlink(path)
        update = self.runner.which("update-grub", required=False)
        mkconfig = None if update else self._mkconfig(self.runner)
        if not update and not mkconfig:
            raise VirtforgeError("neither update-grub nor grub-mkconfig/grub2-mkconfig is installed", "provider",
                                 fix="Install GRUB's tools (grub2-common or grub2-tools)")
        argv = [update] if update else [mkconfig, "-o", self._grub_cfg()]
        self.runner.run(argv, what="update-grub")

    def _grub_cfg(self):
        for candidate in ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"):
            if os.path.exists(_path(self.root, candidate)):
                return candidate
        return "/boot/grub/grub.cfg"


class GrubbyProvider(object):
    name = "grubby"

    def __init__(self, runner, root="/"):
        self.runner, self.root = runner, root

    @classmethod
    def usable(cls, runner, root="/"):
        return bool(runner.which("grubby", required=False))

    def read(self):
        _rc, out, _err = self.runner.run([self.runner.which("grubby"), "--info=DEFAULT"], what="grubby --info")
        for line in out.splitlines():
            if line.startswith("args="):
                value = line[len("args="):].strip().strip('"')
                return value.split(), []
        return [], []

    def render(self, args):
        return " ".join(args) + ("\n" if args else "")

    def apply(self, own_before, own_after):
        grubby = self.runner.which("grubby")
        # --args replaces the value of a name already there; --remove-args is for names that go
        kept_keys = {key(a) for a in own_after}
        removed = [a for a in own_before if key(a) not in kept_keys]
        added = [a for a in own_after if a not in own_before]
        if removed:
            self.runner.run([grubby, "--update-kernel=ALL", "--remove-args=" + " ".join(removed)],
                            what="grubby --remove-args")
        if added:
            self.runner.run([grubby, "--update-kernel=ALL", "--args=" + " ".join(added)], what="grubby --args")


def provider_for(name, runner, root="/", path=GRUB_D_FILE):
    """The named provider; ``auto``: grubby where it is installed (RHEL family), else GRUB's tools."""
    if name == "grubby" or (name == "auto" and GrubbyProvider.usable(runner, root)):
        return GrubbyProvider(runner, root)
    if name == "grub" or GrubProvider.usable(runner, root):
        return GrubProvider(runner, root, path)
    raise VirtforgeError("neither grubby nor GRUB's update-grub/grub-mkconfig was found", "provider",
                         fix="Install grubby (RHEL/Fedora) or grub2-common (Debian/Ubuntu), or set the arguments "
                             "in your bootloader by hand")


def run(params, runner, check_mode, root="/"):
    wanted = validate(params["args"])
    present = params.get("state", "present") == "present"
    provider = provider_for(params.get("provider") or "auto", runner, root, params.get("grub_file") or GRUB_D_FILE)
    own, elsewhere = provider.read()
    if provider.name == "grubby":
        target = merge(own, wanted, present)
    else:
        # GRUB: only this module's file is written; what /etc/default/grub sets already counts as present
        missing = [a for a in wanted if a not in elsewhere] if present else wanted
        target = merge(own, missing, present)
    changed = target != own
    warnings = []
    if not present and provider.name == "grub":
        kept = [a for a in wanted if a in elsewhere]
        if kept:
            warnings.append("%s stay: /etc/default/grub sets them, and this module does not edit that file"
                            % ", ".join(kept))
    if changed and not check_mode:
        provider.apply(own, target)
    running = (read_text(root, "/proc/cmdline") or "").split()
    configured = elsewhere + target
    if present:
        reboot = [a for a in wanted if a not in running]
    else:
        reboot = [a for a in wanted if a in running or ("=" not in a and any(key(r) == a for r in running))]
        reboot = [a for a in reboot if a not in configured]
    return dict(changed=changed, provider=provider.name, args=target, configured=configured, cmdline=running,
                reboot_required=bool(reboot), reboot_for=reboot, warnings=warnings,
                diff=dict(before=provider.render(own), after=provider.render(target),
                          before_header=getattr(provider, "path", "grubby DEFAULT"),
                          after_header=getattr(provider, "path", "grubby DEFAULT")))
