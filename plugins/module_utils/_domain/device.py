# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the ``domain_device`` module: attach, update or detach devices on an existing domain.

Every device kind is the same :class:`devices.DeviceGroup` the ``domain`` module uses for its
lists (``disks``, ``interfaces``...). An item of ``devices`` names its ``kind``; the item is
validated against that group's item options and turned canonical by the group, so identity
(target dev, MAC), defaults and error messages are those of the ``domain`` module.

One plan per *scope*: ``config`` (the persistent definition, applied with ``defineXML``) and
``live`` (the running guest, applied with attach/detach/update through the group's
``apply_live``). Check mode stops after the plans; diff mode shows both.
"""

from __future__ import annotations

import copy
import re
import time

from .._engine import Change, Plan, parse_xml, to_xml
from .._errors import VirtforgeError
from .._libvirt import libvirt, module_connection
from .._validate import check_name
from .buslimits import check_hotplug_slots
from .context import DomainContext, HostCache
from .devices import _MAC_RE
from .spec import DomainSpec

XML_INACTIVE = 2  # libvirt.VIR_DOMAIN_XML_INACTIVE
TARGETS = ["auto", "live", "config", "both"]

#: kind -> (group name in DomainSpec, options that identify one item of it)
KINDS = dict(disk=("disks", ("dev",)), interface=("interfaces", ("mac",)), controller=("controllers", ("type",)),
             rng=("rngs", ()), watchdog=("watchdogs", ()), hostdev=("hostdevs", ()))


def argument_spec():
    from .._libvirt import CONNECTION_ARGSPEC
    spec = dict(
        name=dict(type="str", required=True),
        devices=dict(type="list", elements="dict"),
        device=dict(type="dict"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        target=dict(type="str", choices=TARGETS, default="auto"),
        detach_timeout=dict(type="int", default=30),
    )
    spec.update(CONNECTION_ARGSPEC)
    return spec


def _validate(raw, index, groups):
    """One item of ``devices`` checked against its kind's item options (like Ansible would)."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    where = "devices[%d]" % index
    if not isinstance(raw, dict):
        raise VirtforgeError("each device must be a dictionary", option=where)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise VirtforgeError("unknown device kind %r" % (kind,), option=where + ".kind",
                             fix="Use one of: %s" % ", ".join(sorted(KINDS)))
    group = groups[KINDS[kind][0]]
    spec = dict(copy.deepcopy(group.item_spec), kind=dict(type="str", required=True))
    result = ArgumentSpecValidator(spec).validate(raw)
    if result.error_messages:
        raise VirtforgeError("; ".join(result.error_messages), option=where,
                             fix="A %s takes the options of the domain module's %s items" % (kind, group.option))
    item = dict(result.validated_parameters)
    item.pop("kind")
    for key in KINDS[kind][1]:
        if not item.get(key):
            raise VirtforgeError("a %s needs %s: it is how the device is found again on the next run" % (kind, key),
                                 option="%s.%s" % (where, key))
    return kind, group, item


class DeviceManager(object):
    def __init__(self, module, sleep=time.sleep, clock=time.monotonic):
        self.module = module
        self.spec = DomainSpec()
        self.groups = {g.name: g for g in self.spec.groups}
        self.sleep = sleep
        self.clock = clock
        self.timing = {}
        self.index_of = {}  # (group name, item key) -> index in devices

    # -------------------------------------------------------------------- input
    def items(self):
        params = self.module.params
        raw = params.get("devices")
        if params.get("device") is not None:
            if raw is not None:
                raise VirtforgeError("give device or devices, not both", option="device")
            raw = [params["device"]]
        if not raw:
            raise VirtforgeError("nothing to do: devices is empty", option="devices",
                                 fix="List at least one device, each with a kind")
        if params["detach_timeout"] < 0:
            raise VirtforgeError("must not be negative", option="detach_timeout")
        return [_validate(r, i, self.groups) for i, r in enumerate(raw)]

    def canonical(self, validated, ctx):
        """Per group: list of (index, canonical item). Errors name devices[i]."""
        out = {}
        for index, (_kind, group, item) in enumerate(validated):
            try:
                if self.module.params["state"] == "absent":
                    canon = _identity(group, item, index, ctx)
                else:
                    canon = group.desired_item(item, index, ctx)
            except VirtforgeError as exc:
                raise VirtforgeError(exc.msg, option=_rename(exc.option, group.option, index), fix=exc.fix) from None
            out.setdefault(group.name, []).append((index, canon))
        seen = {}
        for name, items in out.items():
            group = self.groups[name]
            for index, item in items:
                key = group.item_key(item)
                if key in seen:
                    raise VirtforgeError("%r is listed twice (also devices[%d])" % (key, seen[key]),
                                         option="devices[%d]" % index)
                seen[key] = index
                self.index_of[(name, key)] = index
        if self.module.params["state"] != "absent":
            for name, items in out.items():  # host checks over each kind's items (hostdev: IOMMU groups)
                self.groups[name].check_host([("devices[%d]" % i, validated[i][2], canon) for i, canon in items], ctx)
        return out

    # --------------------------------------------------------------------- plan
    def plan_scope(self, scope, xml, wanted, ctx):
        root = parse_xml(xml)
        after = copy.deepcopy(root)
        changes, desired = [], {}
        absent = self.module.params["state"] == "absent"
        for name, items in wanted.items():
            group = self.groups[name]
            if absent:
                for _index, item in items:
                    key = group.item_key(item)
                    element = group.find_element(after, key, ctx)
                    if element is None:
                        continue
                    old = group.read_element(element, ctx)
                    changes.append(Change("%s[%s]" % (name, key), old, None, group=name, key=key,
                                          live=group.hotpluggable(old) if scope == "live" else None))
                    group.remove_item(after, key, ctx)
                desired[name] = dict(items=[], purge=False)
                continue
            want = dict(items=[i for _idx, i in items], purge=False)
            desired[name] = want
            try:
                group_changes = group.compare(want, group.current(root, ctx), ctx)
            except VirtforgeError as exc:  # "disks[2].bus": the 3rd disk of this task -> its devices[i]
                match = re.match(r"^%s\[(\d+)\]" % re.escape(group.option), exc.option or "")
                index = items[int(match.group(1))][0] if match and int(match.group(1)) < len(items) else 0
                raise VirtforgeError(exc.msg, option=_rename(exc.option, group.option, index), fix=exc.fix) from None
            if scope == "config":
                for change in group_changes:
                    change.live = None
            if group_changes:
                changes.extend(group_changes)
                group.write(after, want, ctx)
        if scope == "live":
            try:
                check_hotplug_slots(changes, self.groups, root)
            except VirtforgeError as exc:  # "interfaces[MAC]" -> the devices[i] the user wrote
                change = next(c for c in changes if c.path == exc.option)
                raise VirtforgeError(exc.msg, option="devices[%d]" % self.index_of[(change.group, change.key)],
                                     fix=exc.fix) from None
        plan = Plan(ctx["name"], "domain %s" % scope, to_xml(root), to_xml(after) if changes else to_xml(root),
                    changes, action="update" if changes else None)
        plan.desired = desired
        plan.scope = scope
        return plan

    def _check_macs(self, conn, name, wanted):
        """A new NIC's MAC must not be used by another domain on this host."""
        items = wanted.get("interfaces") or []
        if not items or self.module.params["state"] == "absent":
            return
        used = {}
        for dom in conn.listAllDomains(0):
            if dom.name() == name:
                continue
            for node in parse_xml(dom.XMLDesc(XML_INACTIVE)).iterfind("./devices/interface/mac"):
                used[(node.get("address") or "").lower()] = dom.name()
        for index, item in items:
            if item["mac"] in used:
                raise VirtforgeError("MAC %s is already used by domain %s" % (item["mac"], used[item["mac"]]),
                                     option="devices[%d].mac" % index, fix="Choose another MAC address")

    # -------------------------------------------------------------------- run
    def run(self):
        params = self.module.params
        name = params["name"]
        check_name(name, option="name", kind="domain name")
        validated = self.items()
        started = self.clock()
        conn = module_connection(self.module)
        host = HostCache(conn, params.get("uri"), warn=self.module.warn)
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError:
            raise VirtforgeError("domain %r does not exist" % name, option="name",
                                 fix="Define it first (virtforge.libvirt.domain)") from None
        running = bool(dom.isActive())
        target = params["target"]
        if target in ("live", "both") and not running:
            raise VirtforgeError("domain %s is not running: nothing to change live" % name, option="target",
                                 fix="Use target: config or auto, or start the domain first")
        scopes = []
        if target in ("config", "both", "auto"):
            scopes.append("config")
        if target in ("live", "both") or (target == "auto" and running):
            scopes.append("live")
        cfg_ctx = DomainContext(host, name, running=False, domain=dom)
        wanted = self.canonical(validated, cfg_ctx)
        self._check_macs(conn, name, wanted)
        plans = []
        for scope in scopes:
            ctx = DomainContext(host, name, running=(scope == "live"), domain=dom)
            xml = dom.XMLDesc(XML_INACTIVE if scope == "config" else 0)
            plans.append((self.plan_scope(scope, xml, wanted, ctx), ctx))
        restart_required = False
        for plan, _ctx in plans:
            if plan.scope != "live":
                continue
            for change in plan.changes:
                if change.live is False:
                    if target == "live":
                        raise VirtforgeError(
                            "%s cannot be changed on the running domain (%s)" % (change.path, _why(change)),
                            option="devices[%d]" % self.index_of[(change.group, change.key)],
                            fix="Use target: config (or auto) and restart the domain")
                    restart_required = True
        if target == "auto" and not running:
            restart_required = False
        self._timed("plan", started)
        if not self.module.check_mode:
            # live first: a change the running guest refuses then leaves the definition untouched
            for plan, ctx in sorted(plans, key=lambda p: p[0].scope != "live"):
                if plan.changes:
                    started = self.clock()
                    self.apply(dom, conn, plan, ctx)
                    self._timed("apply_%s" % plan.scope, started)
        changes = []
        for plan, _ctx in plans:
            for change in plan.changes:
                entry = change.to_dict()
                entry["scope"] = plan.scope
                entry["device"] = "devices[%d]" % self.index_of[(change.group, change.key)]
                changes.append(entry)
        return dict(
            changed=any(p.changed for p, _c in plans),
            changes=changes,
            restart_required=restart_required,
            running=running,
            scopes=[p.scope for p, _c in plans],
            diff=[p.diff() for p, _c in plans],
            timing=self.timing,
        )

    def apply(self, dom, conn, plan, ctx):
        if plan.scope == "config":
            conn.defineXML(plan.after_xml)
            return
        live = [c for c in plan.changes if c.live]
        if not live:
            return
        ctx["plan_after_root"] = parse_xml(plan.after_xml)
        ctx["plan_before_root"] = parse_xml(plan.before_xml)
        subset = Plan(plan.name, plan.kind, plan.before_xml, plan.after_xml, live, plan.action)
        subset.desired = plan.desired
        self.spec.apply_live(dom, subset, ctx)
        removed = [c for c in live if c.action == "remove"]
        if removed:
            self._wait_detached(dom, removed, ctx)

    def _wait_detached(self, dom, removed, ctx):
        """Detaching is a request to the guest: wait until the live XML no longer has the device."""
        deadline = self.clock() + self.module.params["detach_timeout"]
        while True:
            root = parse_xml(dom.XMLDesc(0))
            left = [c for c in removed if self.groups[c.group].find_element(root, c.key, ctx) is not None]
            if not left:
                return
            if self.clock() >= deadline:
                raise VirtforgeError(
                    "the guest did not release %s within %d s" % (", ".join(c.path for c in left),
                                                                  self.module.params["detach_timeout"]),
                    option="detach_timeout",
                    fix="The guest OS must support hot-unplug (ACPI PCI hotplug); raise detach_timeout or use "
                        "target: config and restart")
            self.sleep(0.5)

    def _timed(self, phase, started):
        self.timing[phase] = round(self.timing.get(phase, 0) + self.clock() - started, 3)


def _identity(group, item, index, ctx):
    """With state=absent only the identity matters (a disk to detach needs no path)."""
    where = "%s[%d]" % (group.option, index)
    if group.name not in ("interfaces", "disks"):
        return group.desired_item(item, index, ctx)
    if group.name == "interfaces":
        mac = item["mac"].strip().lower().replace("-", ":")
        if not _MAC_RE.match(mac):
            raise ctx.error("%r is not a MAC address" % item["mac"], where + ".mac")
        return dict(mac=mac)
    if not re.match(r"^[a-z]{2,3}[a-z]+$", item["dev"]):
        raise ctx.error("%r is not a disk target name" % item["dev"], where + ".dev")
    return dict(dev=item["dev"])


def _why(change):
    if change.action in ("add", "remove"):
        return "this device cannot be hot-plugged"
    return "only %s can change live" % ("nothing" if not change.after else "some fields")


def _rename(option, list_option, index):
    """``disks[3].path`` (the domain module's name) -> ``devices[3].path``."""
    if not option:
        return "devices[%d]" % index
    return re.sub(r"^%s\[\d+\]" % re.escape(list_option), "devices[%d]" % index, option)


def run_module(module):
    """Entry point of the ``domain_device`` module."""
    return DeviceManager(module).run()
