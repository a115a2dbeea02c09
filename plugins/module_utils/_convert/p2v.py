# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""P2V offline: a physical machine's disk (a block device, or a raw image of it) into a KVM domain.

The conversion is the V2V engine with ``-i disk`` (virt-v2v fix-up), or a verified qemu-img copy with
``inspect: false``. What is P2V's own: the source is a block device that is read, never written, and
only while nothing else uses it (mounted, held, swap, a domain's disk) - a consistent image - unless
``allow_in_use`` accepts a crash-consistent read; the domain carries the source's MAC addresses.
"""

from __future__ import annotations

import copy
import os
import stat

from .._errors import VirtforgeError
from . import blockdev, v2v

ARGUMENT_SPEC = copy.deepcopy(v2v.ARGUMENT_SPEC)
for _key in ("input", "src_uri", "src_name", "src_password", "verify_manifest", "src_format"):
    ARGUMENT_SPEC.pop(_key)
ARGUMENT_SPEC["src"] = dict(type="path", required=True)
ARGUMENT_SPEC["allow_in_use"] = dict(type="bool", default=False)
ARGUMENT_SPEC["vcpus"] = dict(type="int", default=1)
ARGUMENT_SPEC["memory"] = dict(type="raw", default=1024)


class P2V(v2v.Converter):
    kind = "p2v"

    def __init__(self, module, runner, connect):
        super().__init__(module, runner, connect)
        params = dict(module.params)
        params.update(input="disk", src_format="raw", verify_manifest=False, src_uri=None, src_name=None,
                      src_password=None)
        self.params = params

    def check_source(self, plan):
        src = self.params["src"]
        st = os.stat(src)
        if stat.S_ISBLK(st.st_mode):
            device = blockdev.check_block_device(src, "src")
            size = blockdev.device_size(device)
            busy = blockdev.users(device, conn=self.connect())
            if busy and not self.params["allow_in_use"]:
                raise VirtforgeError("%s is in use: %s; reading it now would not give a consistent image"
                                     % (src, "; ".join(busy)), option="src",
                                     fix="Unmount it / stop what uses it, or set allow_in_use: true for a "
                                         "crash-consistent copy")
            if busy:
                self.notes.append("%s was read while in use (%s): the copy is crash-consistent only"
                                  % (src, "; ".join(busy)))
            plan["source_kind"] = "block device"
        elif stat.S_ISREG(st.st_mode):
            size = st.st_size
            plan["source_kind"] = "raw image"
        else:
            raise VirtforgeError("%s is neither a block device nor a file" % src, option="src")
        if size == 0:
            raise VirtforgeError("%s is empty" % src, option="src")
        plan["src_info"] = dict(format="raw", virtual_size=size)

    def run(self, check_mode):
        result = super().run(check_mode)
        result["source_size"] = self._size()
        return result

    def _size(self):
        src = self.params["src"]
        if stat.S_ISBLK(os.stat(src).st_mode):
            return blockdev.device_size(src)
        return os.path.getsize(src)


def run_module(module, runner, connect):
    return v2v.run_module(module, runner, connect, converter=P2V)
