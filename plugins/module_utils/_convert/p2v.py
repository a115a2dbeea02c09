# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""P2V: a physical machine into a KVM domain, offline from its disk or live over SSH.

The conversion is the V2V engine with ``-i disk`` (virt-v2v fix-up), or a verified qemu-img copy with
``inspect: false``. What is P2V's own:
- offline: the source is a block device (or a raw image of it) that is read, never written, and only
  while nothing else uses it (mounted, held, swap, a domain's disk) - a consistent image - unless
  ``allow_in_use`` accepts a crash-consistent read;
- live (``ssh``): the running machine's CPUs, memory, disk and NIC MACs are read over SSH, its disk is
  streamed with its filesystems frozen (or crash-consistent) into a sparse raw file verified by sha256
  (remote.py), and that file is converted;
- the domain carries the source's MAC addresses (and, live, its CPU count and memory) unless overridden.
"""

from __future__ import annotations

import copy
import os
import stat

import shutil

from .._errors import VirtforgeError
from . import blockdev, remote, v2v

ARGUMENT_SPEC = copy.deepcopy(v2v.ARGUMENT_SPEC)
for _key in ("input", "src_uri", "src_name", "src_password", "verify_manifest", "src_format"):
    ARGUMENT_SPEC.pop(_key)
ARGUMENT_SPEC["src"] = dict(type="path")
ARGUMENT_SPEC["allow_in_use"] = dict(type="bool", default=False)
ARGUMENT_SPEC["ssh"] = dict(type="dict", options=remote.SSH_SPEC)
ARGUMENT_SPEC["consistency"] = dict(type="str", choices=["freeze", "crash"], default="freeze")
ARGUMENT_SPEC["freeze_timeout"] = dict(type="int", default=7200)
MEMORY_ROUND_MIB = 128


class P2V(v2v.Converter):
    kind = "p2v"

    def __init__(self, module, runner, connect):
        super().__init__(module, runner, connect)
        params = dict(module.params)
        params.update(input="disk", src_format="raw", verify_manifest=False, src_uri=None, src_name=None,
                      src_password=None)
        self.params = params
        self.remote = remote.RemoteSource(params["ssh"], self.log) if params.get("ssh") else None
        if self.remote is None:
            params["vcpus"] = params.get("vcpus") or 1
            params["memory"] = 1024 if params.get("memory") is None else params["memory"]

    def input_mode(self):
        if self.remote is None and not self.params.get("src"):
            raise VirtforgeError("src is required: the machine's disk (a block device or a raw image of it), "
                                 "or ssh: to read a running machine", option="src")
        if self.params["freeze_timeout"] < 60:
            raise VirtforgeError("must be at least 60 seconds", option="freeze_timeout")
        return "disk"

    def check_src_path(self, mode):
        if self.remote is None:
            super().check_src_path(mode)

    def check_source(self, plan):
        if self.remote is not None:
            return self.check_remote(plan)
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

    def check_remote(self, plan):
        p = self.params
        host = p["ssh"]["host"]
        self.source = None
        if plan["existing"] and not p["force"]:
            # converted earlier: reported unchanged without contacting the machine (it may be gone by now)
            p["src"] = "%s (over SSH)" % host
            return None
        with self.log.phase("facts", "reading %s over SSH" % host):
            facts = self.remote.gather()
        device, size, mounts, others = self.remote.disk(p.get("src"), "src")
        if size == 0:
            raise VirtforgeError("%s on %s is empty" % (device, host), option="src")
        freeze = p["consistency"] == "freeze"
        if facts.get("uid") != 0:
            raise VirtforgeError("%s is not root on %s: reading %s%s needs root" % (
                p["ssh"]["user"], host, device, " and freezing its filesystems" if freeze else ""),
                option="ssh.user", fix="Connect as root (or a user whose login shell runs as root)")
        if freeze and mounts and not facts.get("fsfreeze"):
            raise VirtforgeError("%s has no fsfreeze (util-linux)" % host, option="consistency",
                                 fix="Install util-linux there, or use consistency: crash")
        if freeze and others:
            self.notes.append("filesystems on %s that cannot be frozen (%s) were copied crash-consistent"
                              % (device, ", ".join(others)))
        if not freeze and (mounts or others):
            self.notes.append("consistency: crash - %s was read while mounted (%s): the copy is crash-consistent "
                              "only" % (device, ", ".join(mounts + others)))
        free = shutil.disk_usage(plan["location"].directory).free
        if free < size:
            raise VirtforgeError("%s has %d MiB free; the copy of %s needs up to %d MiB" % (
                plan["location"].directory, free >> 20, device, size >> 20),
                option="pool" if p.get("pool") else "directory", fix="Free space or choose another pool")
        memory_mib = -(-facts.get("memory_kib", 1048576) // 1024 // MEMORY_ROUND_MIB) * MEMORY_ROUND_MIB
        source = dict(host=host, device=device, size=size, cpus=facts.get("cpus"), memory_mib=memory_mib,
                      nics=[dict(name=n, mac=m) for n, m in sorted(facts["nics"])],
                      frozen=mounts if freeze else [], consistency=p["consistency"])
        self.source = source
        plan["source_kind"] = "ssh"
        plan["src_info"] = dict(format="raw", virtual_size=size)
        # the domain gets the machine's resources and MACs unless the user set them
        p["vcpus"] = p.get("vcpus") or facts.get("cpus") or 1
        p["memory"] = memory_mib if p.get("memory") is None else p["memory"]
        if not p.get("macs"):
            p["macs"] = [nic["mac"] for nic in source["nics"]]
        p["src"] = "%s:%s (over SSH)" % (host, device)
        return None

    def convert(self, plan, work):
        if self.remote is None:
            return super().convert(plan, work)
        source = self.source
        raw = os.path.join(work, "source.raw")
        detail = "%s:%s, %d MiB, %s" % (source["host"], source["device"], source["size"] >> 20,
                                        "frozen: " + " ".join(source["frozen"]) if source["frozen"]
                                        else "crash-consistent")
        with self.log.phase("copy", detail):
            total, seconds, digest = self.remote.copy(source["device"], source["size"], source["frozen"], raw,
                                                      self.params["freeze_timeout"])
        source.update(copied_bytes=total, copy_seconds=seconds, sha256=digest,
                      allocated_bytes=os.stat(raw).st_blocks * 512)
        self.params["src"] = raw
        return super().convert(plan, work)

    def run(self, check_mode):
        result = super().run(check_mode)
        if self.remote is not None:
            result["source"] = self.source
            result["source_size"] = self.source["size"] if self.source else None
        else:
            result["source_size"] = self._size()
        return result

    def _size(self):
        src = self.params["src"]
        if stat.S_ISBLK(os.stat(src).st_mode):
            return blockdev.device_size(src)
        return os.path.getsize(src)


def run_module(module, runner, connect):
    return v2v.run_module(module, runner, connect, converter=P2V)
