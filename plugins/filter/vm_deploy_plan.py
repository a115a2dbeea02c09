# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the vm_deploy role: one VM list in, one batch of parameters per module out."""

from __future__ import annotations

DOCUMENTATION = r"""
name: vm_deploy_plan
short_description: Expand vm_deploy's VM list into batched module parameters
version_added: 0.1.0
description:
  - Merges each VM with the shared defaults and its named profile (VM settings win, then the profile,
    then the defaults), fills in what the role derives (root disk name, hostname), and returns one list of
    parameters per module, so that each step of the role is a single task for all VMs.
  - Used by the P(virtforge.libvirt.vm_deploy#role) role; usable on its own.
options:
  _input:
    description: The VMs (the role's C(vm_deploy_vms)).
    type: list
    elements: dict
    required: true
  defaults:
    description: Settings every VM starts from.
    type: dict
  profiles:
    description: Named settings a VM picks with C(profile).
    type: dict
  io_profiles:
    description:
      - Named I/O templates a VM picks with C(io_profile) - C(interfaces), C(extra_disks), C(hostdevs) and
        C(root_iotune) - put before the VM's own NICs, disks and host devices.
      - A VM that is only defined (C(state) present or stopped) gets its PCI host devices without the IOMMU group
        check unless C(iommu_check) is set, so it can be defined before its host has the hardware.
    type: dict
  pool:
    description: Storage pool for the VMs' disks.
    type: str
    default: default
  golden_image:
    description: Golden image path for VMs that do not name their own.
    type: str
  remove_storage:
    description: For VMs with state absent, ask the domain module to delete their disks too.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Expand the VM list
  ansible.builtin.set_fact:
    plan: "{{ vms | virtforge.libvirt.vm_deploy_plan(defaults=defaults, pool='default', golden_image=golden) }}"
"""

RETURN = r"""
_value:
  description: Keys C(vms), C(clones), C(disks), C(customizations), C(domains), C(absent), C(golden_images).
  type: dict
"""

import copy
import hashlib
import re

from ansible.errors import AnsibleFilterError

STATES = ("running", "stopped", "present", "paused", "absent")
CLONE_MODES = ("linked", "full", "reflink", "auto")
# Keys of a VM that are the role's own; everything else in a VM is passed to the domain module as is.
ROLE_KEYS = {"profile", "io_profile", "golden_image", "clone_mode", "root_size", "root_iotune", "extra_disks",
             "network", "customize", "state", "pool"}
DOMAIN_KEYS = {"vcpus", "max_vcpus", "memory", "max_memory", "cpu_mode", "cpu_model", "machine", "arch",
               "firmware", "secure_boot", "boot", "interfaces", "hostdevs", "tags", "autostart", "title",
               "description", "graphics", "serial_console", "guest_agent", "domain_type", "name", "cputune",
               "memtune", "numatune", "memory_backing", "controllers", "graphics_listen", "balloon", "tpm",
               "iommu", "rngs", "watchdogs"}
IO_PROFILE_KEYS = {"interfaces", "extra_disks", "hostdevs", "root_iotune"}
# what an extra disk may carry besides where it is made
EXTRA_DISK_KEYS = {"size", "name", "bus", "format", "dev", "iotune", "cache", "io", "discard", "serial", "wwn",
                   "shareable", "paths"}


def _paths(extra, where):
    """How many SCSI paths a guest sees to an extra disk (2 or more: a multipath LUN)."""
    paths = extra.get("paths", 1)
    if isinstance(paths, bool) or not isinstance(paths, int) or not 1 <= paths <= 8:
        _fail("%s.paths: %r is not a number of paths from 1 to 8" % (where, paths))
    if paths > 1:
        if extra.get("bus", "scsi") != "scsi":
            _fail("%s.bus: a disk with paths: %d is on the scsi bus (multipath), not %s" % (where, paths, extra["bus"]))
        if extra.get("format", "raw") != "raw":
            _fail("%s.format: a disk with paths: %d is shared by its paths and must be raw" % (where, paths))
        if extra.get("shareable") is False:
            _fail("%s.shareable: a disk with paths: %d is open on every path at once; leave shareable out" % (
                where, paths))
        if extra.get("dev") is not None:
            _fail("%s.dev: a disk with paths: %d gets one name per path; leave dev out" % (where, paths))
    return paths


_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+:-]*$")


def _fail(msg):
    raise AnsibleFilterError("vm_deploy: %s" % msg)


def _merge(*layers):
    out = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if key == "customize" and isinstance(value, dict) and isinstance(out.get(key), dict):
                merged = dict(out[key])
                merged.update(value)
                out[key] = merged
            else:
                out[key] = copy.deepcopy(value)
    return out


def _with_io_profile(vm, io_profiles, where):
    """The VM with its I/O profile's NICs, disks and host devices put first (the VM's own follow)."""
    name = vm.pop("io_profile", None)
    if name is None:
        return vm
    if name not in io_profiles:
        _fail("%s.io_profile: unknown I/O profile %r; known: %s"
              % (where, name, ", ".join(sorted(io_profiles)) or "none (set vm_deploy_io_profiles)"))
    template = io_profiles[name]
    if not isinstance(template, dict):
        _fail("vm_deploy_io_profiles.%s: must be a dict of %s" % (name, ", ".join(sorted(IO_PROFILE_KEYS))))
    unknown = set(template) - IO_PROFILE_KEYS
    if unknown:
        _fail("vm_deploy_io_profiles.%s: unknown settings %s; an I/O profile takes %s"
              % (name, ", ".join(sorted(unknown)), ", ".join(sorted(IO_PROFILE_KEYS))))
    for key in ("interfaces", "extra_disks", "hostdevs"):
        if key in template:
            if not isinstance(template[key], list):
                _fail("vm_deploy_io_profiles.%s.%s: must be a list" % (name, key))
            vm[key] = copy.deepcopy(template[key]) + list(vm.get(key) or [])
    if "root_iotune" in template and "root_iotune" not in vm:
        vm["root_iotune"] = copy.deepcopy(template["root_iotune"])
    return vm


def vm_deploy_plan(vms, defaults=None, profiles=None, pool="default", golden_image=None, remove_storage=False,
                   io_profiles=None):
    if not isinstance(vms, list):
        _fail("vm_deploy_vms must be a list of VMs, got %s" % type(vms).__name__)
    profiles = profiles or {}
    io_profiles = io_profiles or {}
    plan = dict(vms=[], clones=[], disks=[], customizations=[], domains=[], absent=[], golden_images=[])
    seen = set()
    for index, raw in enumerate(vms):
        where = "vm_deploy_vms[%d]" % index
        if not isinstance(raw, dict) or not raw.get("name"):
            _fail("%s: every VM needs a name" % where)
        name = raw["name"]
        where = "vm_deploy_vms[%d] (%s)" % (index, name)
        if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 64:
            _fail("%s.name: %r is not a valid name; use letters, digits and . _ - + : only" % (where, name))
        if name in seen:
            _fail("%s.name: %r is listed twice" % (where, name))
        seen.add(name)
        profile_name = raw.get("profile", (defaults or {}).get("profile"))
        if profile_name is not None and profile_name not in profiles:
            _fail("%s.profile: unknown profile %r; known: %s"
                  % (where, profile_name, ", ".join(sorted(profiles)) or "none (set vm_deploy_profiles)"))
        vm = _merge(defaults, profiles.get(profile_name) if profile_name else None, raw)
        vm.pop("profile", None)
        vm = _with_io_profile(vm, io_profiles, where)
        unknown = set(vm) - ROLE_KEYS - DOMAIN_KEYS
        if unknown:
            _fail("%s: unknown settings %s; see the role's argument spec for vm_deploy_vms"
                  % (where, ", ".join(sorted(unknown))))
        state = vm.get("state", "running")
        if state not in STATES:
            _fail("%s.state: %r is not one of %s" % (where, state, ", ".join(STATES)))
        vm_pool = vm.get("pool", pool)
        plan["vms"].append(dict(vm, state=state, pool=vm_pool))
        if state == "absent":
            plan["absent"].append(name)
            plan["domains"].append(dict(name=name, state="absent", remove_storage=bool(remove_storage)))
            continue
        golden = vm.get("golden_image", golden_image)
        if not golden:
            _fail("%s.golden_image: no golden image; set vm_deploy_golden_image or the VM's golden_image" % where)
        mode = vm.get("clone_mode", "linked")
        if mode not in CLONE_MODES:
            _fail("%s.clone_mode: %r is not one of %s" % (where, mode, ", ".join(CLONE_MODES)))
        if golden not in plan["golden_images"]:
            plan["golden_images"].append(golden)
        root = "%s.qcow2" % name
        clone = dict(name=root, pool=vm_pool, clone_from=golden, mode=mode)
        if vm.get("root_size") is not None:
            clone["capacity"] = vm["root_size"]
        plan["clones"].append(clone)
        disks = [dict(pool=vm_pool, volume=root, dev="vda", bus="virtio", format="qcow2")]
        if vm.get("root_iotune") is not None:
            disks[0]["iotune"] = vm["root_iotune"]
        for dindex, extra in enumerate(vm.get("extra_disks") or []):
            if not isinstance(extra, dict) or extra.get("size") is None:
                _fail("%s.extra_disks[%d].size: every extra disk needs a size" % (where, dindex))
            unknown = set(extra) - EXTRA_DISK_KEYS
            if unknown:
                _fail("%s.extra_disks[%d]: unknown settings %s; a disk takes %s"
                      % (where, dindex, ", ".join(sorted(unknown)), ", ".join(sorted(EXTRA_DISK_KEYS))))
            paths = _paths(extra, "%s.extra_disks[%d]" % (where, dindex))
            fmt = extra.get("format", "raw" if paths > 1 else "qcow2")
            vol = extra.get("name") or "%s-disk%d.%s" % (name, dindex + 1, fmt)
            plan["disks"].append(dict(name=vol, pool=vm_pool, capacity=extra["size"], format=fmt))
            disk = dict(pool=vm_pool, volume=vol, bus=extra.get("bus", "scsi" if paths > 1 else "virtio"),
                        format=fmt)
            for key in ("dev", "iotune", "cache", "io", "discard", "serial", "wwn", "shareable"):
                if extra.get(key) is not None:
                    disk[key] = copy.deepcopy(extra[key])
            if paths > 1:
                # one LUN seen over several SCSI paths: one volume, one WWN, shared
                disk.setdefault("wwn", "5" + hashlib.sha256(("%s/%s" % (vm_pool, vol)).encode()).hexdigest()[:15])
                disk.setdefault("shareable", True)
                disk.pop("dev", None)
            disks.extend(copy.deepcopy(disk) for _path in range(paths))
        if vm.get("customize") is False:
            customize = None  # e.g. images that configure themselves with cloud-init
        else:
            customize = dict(vm.get("customize") or {})
            customize.setdefault("hostname", name)
        # every clone is a new machine: its own machine-id and SSH host keys, made at first boot
            customize.setdefault("machine_id_reset", True)
            customize.setdefault("ssh_host_keys_regenerate", True)
            plan["customizations"].append(dict(customize, pool=vm_pool, volume=root))
        domain = {k: copy.deepcopy(v) for k, v in vm.items() if k in DOMAIN_KEYS}
        domain["disks"] = disks
        if any(d.get("bus") == "scsi" for d in disks) and not any(
                isinstance(c, dict) and c.get("type") == "scsi" for c in domain.get("controllers") or []):
            # libvirt's implicit SCSI controller is an emulated LSI one many guest kernels lack
            domain["controllers"] = list(domain.get("controllers") or []) + [dict(type="scsi", model="virtio-scsi")]
        if "interfaces" not in domain and vm.get("network"):
            domain["interfaces"] = [dict(network=vm["network"], model="virtio")]
        if domain.get("hostdevs") and state in ("present", "stopped"):
            # defined before the host has the hardware: the IOMMU check waits for a start (with a warning)
            domain["hostdevs"] = [dict(h, iommu_check=h.get("iommu_check", False)) if isinstance(h, dict) else h
                                  for h in domain["hostdevs"]]
        domain["state"] = state
        plan["domains"].append(domain)
    return plan


def vm_deploy_report(domains, volumes=None):
    """A fixed-width table of the deployed VMs: name, state, IP, disk backing."""
    backing = {}
    for vol in volumes or []:
        if isinstance(vol, dict) and vol.get("name"):
            backing[vol["name"]] = vol.get("backing") or ("full copy" if vol.get("exists") else "")
    rows = [("NAME", "STATE", "IP", "DISK BACKING")]
    for dom in domains or []:
        # entries as domain and domain_info return them (plain strings are accepted too)
        addresses = [a.get("address") if isinstance(a, dict) else a for a in dom.get("ip_addresses") or []]
        addresses = [a for a in addresses if a]
        rows.append((dom.get("name", ""), dom.get("state", ""), ", ".join(addresses) or "-",
                     backing.get("%s.qcow2" % dom.get("name"), "-") or "-"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]


class FilterModule(object):
    def filters(self):
        return {"vm_deploy_plan": vm_deploy_plan, "vm_deploy_report": vm_deploy_report}
