# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the ``domain`` module: one domain or a batch over one connection.

1. **plan** every domain first (one ``listAllDomains`` for the batch, XML of existing ones
   only): bad input fails here, before anything is created or deleted; check mode stops here.
2. **apply** in phases over the whole batch, so waits overlap instead of adding up:
   define (+ autostart, + live changes) → graceful stop (shutdown, wait, destroy only with
   ``force_stop``) → undefine/storage → start → resume/suspend → wait for agent/IP.

Each phase is timed and logged (``module.log``); the result carries ``timing``.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from .._engine import Plan, parse_xml
from .._errors import VirtforgeError
from .._libvirt import libvirt, module_connection
from .._query import ip_entry
from .._validate import check_name
from .context import DomainContext, HostCache
from .spec import LIFECYCLE_DEFAULTS, NOT_SHARED, DomainSpec, base_facts, parse_base_xml, validate_item

try:
    import libvirt_qemu
except ImportError:  # pragma: no cover - ships with libvirt-python
    libvirt_qemu = None

# Phases whose per-domain steps run in a few threads over the one connection.
PARALLEL_PHASES = ("start", "pause")
PARALLEL_WORKERS = 4
# A start refused with EAGAIN is tried again (after 1, 2, 3 s). Seen once in 50 overlapping starts: libvirt's
# "failed to load cgroup BPF prog: Resource temporarily unavailable" (EAGAIN from the kernel's BPF loader for
# the domain's device cgroup); libvirt itself does not try again.
START_RETRIES = 3
TRANSIENT = "Resource temporarily unavailable"

XML_INACTIVE = 2  # libvirt.VIR_DOMAIN_XML_INACTIVE
UNDEFINE_MANAGED_SAVE = 1
UNDEFINE_NVRAM = 4
UNDEFINE_KEEP_NVRAM = 8
UNDEFINE_TPM = 32
UNDEFINE_KEEP_TPM = 64
ADDR_SRC_LEASE = 0
ADDR_SRC_AGENT = 1

_STATE_NAMES = {0: "running", 1: "running", 2: "running", 3: "paused", 4: "running", 5: "stopped",
                6: "stopped", 7: "paused"}


def _state(dom):
    return _STATE_NAMES.get(dom.state()[0], "running")


class Entry(object):
    """One domain of the task: its parameters, its plan, what happened to it."""

    def __init__(self, index, params, prefix):
        self.index = index
        self.params = params
        self.prefix = prefix
        self.name = params.get("name")
        self.dom = None
        self.plan = None
        self.ctx = None
        self.state_before = None
        self.pending_restart = []
        self.restart_required = False
        self.actions = []  # state actions, in order: start, resume, suspend, shutdown, restart, undefine
        self.storage = dict(remove=[], kept=[])
        self.error = None
        self.ip_addresses = None
        self.agent = None

    @property
    def want(self):
        return self.params["state"]


class DomainManager(object):
    def __init__(self, module, spec=None, sleep=time.sleep, clock=time.monotonic):
        self.module = module
        self.spec = spec or DomainSpec()
        self.sleep = sleep
        self.clock = clock
        self.timing = {}
        self.conn = None
        self.host = None

    # ----------------------------------------------------------------- helpers
    def log(self, msg):
        self.module.log("virtforge.libvirt.domain: %s" % msg)

    def _timed(self, phase, started):
        self.timing[phase] = round(self.timing.get(phase, 0) + self.clock() - started, 3)

    def entries(self):
        params = self.module.params
        shared = {k: v for k, v in params.items() if k not in NOT_SHARED and k not in ("domains", "uri")}
        if params.get("domains") is not None:
            if params.get("name") or params.get("xml") or params.get("uuid"):
                raise VirtforgeError("name, uuid and xml go inside each item when domains is used",
                                     option="domains" if not params.get("name") else "name",
                                     fix="Move them into the items of domains")
            out = []
            for i, item in enumerate(params["domains"]):
                item = validate_item(item, i)
                merged = dict(shared)
                merged.update({k: v for k, v in item.items() if v is not None})
                for key, default in LIFECYCLE_DEFAULTS.items():
                    if merged.get(key) is None:
                        merged[key] = default
                out.append(Entry(i, merged, "domains[%d]." % i))
            return out
        return [Entry(None, dict(params), "")]

    # -------------------------------------------------------------------- plan
    def run(self):
        started = self.clock()
        entries = self.entries()
        for entry in entries:
            self._resolve_name(entry)
        names = {}
        for entry in entries:
            if entry.name in names:
                raise VirtforgeError("domain %r is listed twice (also %sname)" % (entry.name, names[entry.name]),
                                     option=entry.prefix + "name")
            names[entry.name] = entry.prefix
        self.conn = module_connection(self.module)
        self.host = HostCache(self.conn, self.module.params.get("uri"), warn=self.module.warn,
                              check_mode=self.module.check_mode)
        existing = {d.name(): d for d in self.conn.listAllDomains(0)}
        self._timed("connect", started)
        started = self.clock()
        for entry in entries:
            self.plan_entry(entry, existing.get(entry.name))
        self._check_batch_macs(entries)
        self._timed("plan", started)
        self.log("planned %d domain(s), %d to change" % (len(entries), sum(1 for e in entries if e.plan.changed)))
        if not self.module.check_mode:
            self.apply(entries)
        return self.result(entries)

    def _resolve_name(self, entry):
        params = entry.params
        base = None
        if params.get("xml"):
            base = parse_base_xml(params["xml"], entry.prefix + "xml")
            entry.base = base
            xml_name = base.findtext("name")
            if entry.name and xml_name and xml_name != entry.name:
                raise VirtforgeError("the XML names the domain %r, not %r" % (xml_name, entry.name),
                                     option=entry.prefix + "xml", fix="Make name and <name> agree, or drop name")
            entry.name = entry.name or xml_name
        else:
            entry.base = None
        if not entry.name:
            raise VirtforgeError("a domain needs a name", option=entry.prefix + "name")
        if "\n" in entry.name or "\r" in entry.name:
            raise VirtforgeError("domain name %r contains a line break" % entry.name, option=entry.prefix + "name")
        check_name(entry.name, option=entry.prefix + "name", kind="domain name")
        for key in ("shutdown_timeout", "wait_timeout"):
            if params.get(key) is not None and params[key] < 0:
                raise VirtforgeError("must not be negative", option=entry.prefix + key)

    def _check_batch_macs(self, entries):
        seen = {}
        for entry in entries:
            want = (entry.plan.desired or {}).get("interfaces") if hasattr(entry.plan, "desired") else None
            for i, item in enumerate((want or {}).get("items", [])):
                if item["mac"] in seen:
                    raise VirtforgeError("MAC %s is also used by %s" % (item["mac"], seen[item["mac"]]),
                                         option="%sinterfaces[%d].mac" % (entry.prefix, i))
                seen[item["mac"]] = entry.name

    def plan_entry(self, entry, dom):
        entry.dom = dom
        entry.state_before = _state(dom) if dom is not None else None
        if entry.want == "absent":
            self._plan_absent(entry)
            return
        running = entry.state_before in ("running", "paused")
        ctx = DomainContext(self.host, entry.name, entry.prefix, running=running, creating=dom is None, domain=dom)
        if entry.base is not None:
            ctx["base_root"] = entry.base
            ctx["base_root_has"] = base_facts(entry.base)
        entry.ctx = ctx
        current_xml = dom.XMLDesc(XML_INACTIVE) if dom is not None else None
        entry.plan = self.spec.plan(entry.name, entry.params, current_xml, ctx)
        if running:
            # A restart-only change already in the definition but not yet in the running guest.
            live_plan = self.spec.plan(entry.name, entry.params, dom.XMLDesc(0), ctx)
            entry.pending_restart = [c.path for c in live_plan.changes if c.live is False and _pending(c)]
        needs_restart = entry.plan.restart_required or bool(entry.pending_restart)
        entry.restart_required = needs_restart and entry.want in ("present", "running", "paused")
        self._plan_state(entry, running)

    def _plan_state(self, entry, running):
        before, want, acts = entry.state_before, entry.want, entry.actions
        if entry.restart_required and running and entry.params["allow_restart"]:
            acts.append("restart")
            before = "running"
            entry.restart_required = False  # the restart applies it (check mode reports the same)
        if want == "running":
            if before in (None, "stopped"):
                acts.append("start")
            elif before == "paused":
                acts.append("resume")
        elif want == "paused":
            if before in (None, "stopped"):
                acts.extend(["start", "suspend"])
            elif before == "running":
                acts.append("suspend")
        elif want == "stopped" and before in ("running", "paused"):
            acts.append("shutdown")
        entry.plan.notes = list(acts)

    def _plan_absent(self, entry):
        dom = entry.dom
        if dom is None:
            entry.plan = Plan(entry.name, "domain")
            return
        before_xml = dom.XMLDesc(XML_INACTIVE)
        entry.plan = Plan(entry.name, "domain", before_xml, None, action="remove")
        if entry.state_before in ("running", "paused"):
            entry.actions.append("shutdown")
        entry.actions.append("undefine")
        if entry.params["remove_storage"]:
            self._plan_storage(entry, parse_xml(before_xml))
        entry.plan.notes = list(entry.actions) + ["remove_storage %s" % p for p in entry.storage["remove"]]

    # ----------------------------------------------------------------- storage
    def _backing_paths(self):
        """Every image some pool volume uses as its backing file (pools are refreshed first)."""
        if getattr(self, "_backing", None) is None:
            found = {}
            for pool in self.conn.listAllStoragePools(0):
                try:
                    if not pool.isActive():
                        continue
                    pool.refresh(0)
                    for vol in pool.listAllVolumes(0):
                        root = parse_xml(vol.XMLDesc(0))
                        for node in root.iterfind("./backingStore/path"):
                            path = node.text
                            if path and not os.path.isabs(path):
                                path = os.path.join(os.path.dirname(vol.path()), path)
                            if path:
                                found.setdefault(os.path.realpath(path), set()).add(vol.path())
                except libvirt.libvirtError as exc:  # a pool that vanished meanwhile
                    self.module.warn("could not scan pool %s for backing files: %s" % (pool.name(), exc))
            self._backing = found
        return self._backing

    def _other_domain_paths(self, name):
        if getattr(self, "_disk_users", None) is None:
            users = {}
            for dom in self.conn.listAllDomains(0):
                for disk in parse_xml(dom.XMLDesc(XML_INACTIVE)).iterfind("./devices/disk/source"):
                    path = disk.get("file") or disk.get("dev")
                    if path:
                        users.setdefault(os.path.realpath(path), set()).add(dom.name())
            self._disk_users = users
        return self._disk_users

    def _plan_storage(self, entry, root):
        paths = []
        for disk in root.iterfind("./devices/disk"):
            source = disk.find("source")
            if disk.get("device", "disk") != "disk" or source is None or disk.find("readonly") is not None:
                continue
            path = source.get("file") or source.get("dev")
            if path is None and source.get("pool") and source.get("volume"):
                try:
                    path = self.host.volume_path(source.get("pool"), source.get("volume"), "disks")
                except VirtforgeError:
                    continue
            if path and path not in paths:  # a shared disk (multipath) is listed once per path
                paths.append(path)
        backing = self._backing_paths()
        users = self._other_domain_paths(entry.name)
        for path in paths:
            real = os.path.realpath(path)
            children = backing.get(real, set()) - {real}
            others = users.get(real, set()) - {entry.name}
            if children or others:
                why = ("backing file of %s" % ", ".join(sorted(children))) if children else \
                    ("also used by domain %s" % ", ".join(sorted(others)))
                entry.storage["kept"].append(dict(path=path, reason=why))
                self.module.warn("domain %s: kept %s (%s)" % (entry.name, path, why))
            else:
                entry.storage["remove"].append(path)

    def _delete_path(self, path):
        try:
            vol = self.conn.storageVolLookupByPath(path)
        except libvirt.libvirtError:
            vol = None
        if vol is not None:
            vol.delete(0)
        elif self.host.local_files and os.path.isfile(path):
            os.unlink(path)
        else:
            self.module.warn("could not remove %s: not a pool volume and not a local file" % path)

    # ------------------------------------------------------------------- apply
    def apply(self, entries):
        todo = [e for e in entries if e.plan.changed]
        self._phase("define", [e for e in todo if e.want != "absent"], self._define)
        self._phase("stop", [e for e in todo if {"shutdown", "restart"} & set(e.actions)], None)
        self._phase("undefine", [e for e in todo if e.want == "absent"], self._undefine)
        self._phase("start", [e for e in todo if {"start", "restart"} & set(e.actions)], self._start)
        self._phase("pause", [e for e in todo if {"resume", "suspend"} & set(e.actions)], self._pause)
        waiting = [e for e in entries if e.want == "running" and e.params.get("wait_for")]
        if waiting:
            self._phase("wait", waiting, None)

    def _phase(self, name, entries, func):
        entries = [e for e in entries if e.error is None]
        if not entries:
            return
        started = self.clock()
        self.log("%s: %d domain(s)" % (name, len(entries)))
        if name == "stop":
            self._stop_all(entries)
        elif name == "wait":
            self._wait_all(entries)
        elif name in PARALLEL_PHASES and len(entries) > 1:
            # Starting a QEMU process is mostly waiting on it; libvirt connections are
            # thread-safe, so a few starts overlap (each domain still has its own job lock).
            with ThreadPoolExecutor(max_workers=min(PARALLEL_WORKERS, len(entries))) as pool:
                list(pool.map(lambda e: self._step(name, func, e), entries))
        else:
            for entry in entries:
                self._step(name, func, entry)
        self._timed(name, started)

    def _step(self, name, func, entry):
        try:
            func(entry)
        except (VirtforgeError, libvirt.libvirtError) as exc:
            entry.error = _message(exc)
            self.log("%s %s failed: %s" % (name, entry.name, entry.error))

    def _define(self, entry):
        plan = entry.plan
        xml_changed = plan.action == "create" or (plan.after_xml != plan.before_xml)
        if xml_changed:
            entry.dom = self.conn.defineXML(plan.after_xml)
            self.log("defined %s" % entry.name)
        auto = [c for c in plan.changes if c.group == "autostart"]
        if auto:
            entry.dom.setAutostart(1 if auto[0].after else 0)
        live = [c for c in plan.changes if c.live and c.group != "autostart"]
        if live and "restart" not in entry.actions and entry.want != "stopped":
            entry.ctx["plan_after_root"] = parse_xml(plan.after_xml)
            entry.ctx["plan_before_root"] = parse_xml(plan.before_xml)
            self.spec.apply_live(entry.dom, _only(plan, live), entry.ctx)
            self.log("applied %d live change(s) to %s" % (len(live), entry.name))

    def _stop_all(self, entries):
        """Graceful shutdown for all at once, one wait for all, then destroy only with force_stop."""
        pending = []
        for entry in entries:
            try:
                if entry.dom.isActive():
                    if _state(entry.dom) == "paused":
                        entry.dom.resume()
                    entry.dom.shutdown()
                    pending.append(entry)
            except libvirt.libvirtError as exc:
                entry.error = _message(exc)
        deadline = {e.name: self.clock() + e.params["shutdown_timeout"] for e in pending}
        while pending:
            still = []
            for entry in pending:
                try:
                    if not entry.dom.isActive():
                        self.log("%s shut down" % entry.name)
                        continue
                except libvirt.libvirtError as exc:
                    entry.error = _message(exc)
                    continue
                if self.clock() < deadline[entry.name]:
                    still.append(entry)
                elif entry.params["force_stop"]:
                    self.log("%s did not shut down in %d s: destroying (force_stop)" % (
                        entry.name, entry.params["shutdown_timeout"]))
                    try:
                        entry.dom.destroy()
                    except libvirt.libvirtError as exc:
                        # the guest may have finished shutting down between the check and the destroy
                        if _still_active(entry.dom):
                            entry.error = _message(exc)
                else:
                    entry.error = _message(VirtforgeError(
                        "domain %s did not shut down within %d s (the guest ignored the ACPI shutdown request)"
                        % (entry.name, entry.params["shutdown_timeout"]),
                        option=entry.prefix + "shutdown_timeout",
                        fix="Set force_stop: true to power it off after the timeout, or raise shutdown_timeout"))
            pending = still
            if pending:
                self.sleep(0.5)

    def _undefine(self, entry):
        if entry.dom is None or entry.error:
            return
        # UEFI variables and vTPM state (keys, sealed secrets) are data: kept unless remove_storage
        remove = bool(entry.params.get("remove_storage"))
        flags = UNDEFINE_MANAGED_SAVE
        root = parse_xml(entry.plan.before_xml or "<domain/>")
        if root.find("./os/nvram") is not None or root.find("./os[@firmware='efi']") is not None:
            flags |= UNDEFINE_NVRAM if remove else UNDEFINE_KEEP_NVRAM
        if root.find("./devices/tpm/backend[@type='emulator']") is not None:
            flags |= UNDEFINE_TPM if remove else UNDEFINE_KEEP_TPM
        entry.dom.undefineFlags(flags)
        self.log("undefined %s" % entry.name)
        for path in entry.storage["remove"]:
            self._delete_path(path)
            self.log("removed %s" % path)

    def _start(self, entry):
        for attempt in range(START_RETRIES + 1):
            if entry.dom.isActive():
                return
            try:
                entry.dom.create()
                self.log("started %s" % entry.name)
                if attempt:
                    self.module.warn("domain %s started on attempt %d: libvirt refused the start before with %r"
                                     % (entry.name, attempt + 1, TRANSIENT))
                return
            except libvirt.libvirtError as exc:
                if attempt == START_RETRIES or TRANSIENT not in (exc.get_error_message() or ""):
                    raise
                self.log("start of %s refused for now (%s): trying again (%d of %d)"
                         % (entry.name, exc.get_error_message(), attempt + 1, START_RETRIES))
                self.sleep(attempt + 1)

    def _pause(self, entry):
        state = _state(entry.dom)
        if "resume" in entry.actions and state == "paused":
            entry.dom.resume()
        if "suspend" in entry.actions and state != "paused":
            entry.dom.suspend()

    # -------------------------------------------------------------------- wait
    def _wait_all(self, entries):
        started = self.clock()
        pending = list(entries)
        while pending:
            still = []
            for entry in pending:
                try:
                    if self._ready(entry):
                        self.log("%s ready (%s)" % (entry.name, ", ".join(entry.params["wait_for"])))
                        continue
                except libvirt.libvirtError as exc:
                    entry.error = _message(exc)
                    continue
                if self.clock() - started >= entry.params["wait_timeout"]:
                    entry.error = _message(VirtforgeError(
                        "domain %s: no %s within %d s" % (entry.name, " and ".join(entry.params["wait_for"]),
                                                          entry.params["wait_timeout"]),
                        option=entry.prefix + "wait_timeout",
                        fix="Check that the guest boots and runs qemu-guest-agent / DHCP, or raise wait_timeout"))
                else:
                    still.append(entry)
            pending = still
            if pending:
                self.sleep(1)

    def _ready(self, entry):
        wait_for = entry.params["wait_for"]
        if _state(entry.dom) != "running":
            return "ip" not in wait_for and "agent" not in wait_for
        if "agent" in wait_for and not entry.agent:
            entry.agent = self._agent_ping(entry.dom)
            if not entry.agent:
                return False
        if "ip" in wait_for:
            entry.ip_addresses = self.addresses(entry.dom)
            return bool(entry.ip_addresses)
        return True

    @staticmethod
    def _agent_ping(dom):
        if libvirt_qemu is None:  # pragma: no cover
            raise VirtforgeError("libvirt_qemu (part of libvirt-python) is missing", option="wait_for")
        try:
            libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": "guest-ping"}), 5, 0)
            return True
        except libvirt.libvirtError:
            return False

    @staticmethod
    def addresses(dom):
        """Guest IPs in domain_info's shape: what the guest agent says when it answers (the guest's own view;
        while its DHCP client is still running that is nothing yet), else the network's DHCP leases - which can
        still list a lease an earlier guest with the same MAC held, so they are not asked when the agent is."""
        for source, name in ((ADDR_SRC_AGENT, "agent"), (ADDR_SRC_LEASE, "lease")):
            try:
                ifaces = dom.interfaceAddresses(source, 0) or {}
            except libvirt.libvirtError:
                continue
            found = []
            for ifname, info in sorted(ifaces.items()):
                if ifname == "lo":
                    continue
                mac = (info.get("hwaddr") or "").lower() or None
                for addr in info.get("addrs") or []:
                    entry = ip_entry(addr.get("addr"), addr.get("prefix"), mac, ifname, None, name)
                    if entry and all(e["address"] != entry["address"] for e in found):
                        found.append(entry)
            if found or name == "agent":
                return found
        return []

    # ------------------------------------------------------------------ result
    def result(self, entries):
        check = self.module.check_mode
        items, changes, diffs = [], [], []
        for entry in entries:
            plan = entry.plan
            item_changes = plan.change_list()
            for change in item_changes:
                change["domain"] = entry.name
            changes.extend(item_changes)
            diffs.append(plan.diff())
            item = dict(name=entry.name, changed=plan.changed, changes=item_changes,
                        restart_required=entry.restart_required, state=self._final_state(entry, check))
            if plan.after_xml:
                root = parse_xml(plan.after_xml)
                item["type"] = root.get("type")
                item["uuid"] = root.findtext("uuid") or (entry.dom.UUIDString() if entry.dom is not None else None)
            elif entry.dom is not None:
                item["uuid"] = entry.dom.UUIDString()
            if entry.dom is not None and not check and entry.want != "absent" and not item.get("uuid"):
                item["uuid"] = entry.dom.UUIDString()
            if entry.ip_addresses is not None:
                item["ip_addresses"] = entry.ip_addresses
            if entry.agent is not None:
                item["agent"] = entry.agent
            if entry.pending_restart:
                item["pending_restart"] = entry.pending_restart
            if entry.want == "absent" and entry.params.get("remove_storage"):
                item["removed_storage"] = entry.storage["remove"]
                item["kept_storage"] = entry.storage["kept"]
            if entry.error:
                item["error"] = entry.error
            items.append(item)
        result = dict(
            changed=any(i["changed"] for i in items),
            changes=changes,
            restart_required=any(i["restart_required"] for i in items),
            timing=self.timing,
        )
        if self.module.params.get("domains") is not None:
            result["domains"] = items
            result["diff"] = diffs
        else:
            result["domain"] = items[0]
            result["diff"] = diffs[0]
            for key in ("kept_storage", "removed_storage"):
                if key in items[0]:
                    result[key] = items[0][key]
        errors = [i for i in items if i.get("error")]
        if errors:
            result["failed_domains"] = [i["name"] for i in errors]
            if "domains" in result:
                msg = "; ".join("%s: %s" % (i["name"], i["error"]) for i in errors)
            else:
                msg = errors[0]["error"]
            raise VirtforgeError(msg, **result)
        return result

    def _final_state(self, entry, check):
        if entry.want == "absent":
            return "absent"
        if check or entry.dom is None:
            return entry.want if entry.want != "present" else (entry.state_before or "stopped")
        try:
            return _state(entry.dom)
        except libvirt.libvirtError:  # pragma: no cover - daemon went away
            return "unknown"


def _pending(change):
    """Whether a difference between the live XML and the options is a real pending restart.

    The running guest's XML differs from the definition in ways that are not changes: libvirt
    expands ``host-model`` into the host's CPU model and aligns memory sizes (to 1-2 MiB).
    """
    if change.group == "cpu" and change.key in ("cpu_mode", "cpu_model"):
        return False
    if change.group == "memory" and isinstance(change.before, int) and isinstance(change.after, int):
        return abs(change.before - change.after) >= 2 * 1024 ** 2
    return True


def _only(plan, changes):
    subset = Plan(plan.name, plan.kind, plan.before_xml, plan.after_xml, changes, plan.action)
    subset.desired = plan.desired
    return subset


def _message(exc):
    if isinstance(exc, VirtforgeError):
        return exc.message
    msg = "libvirt: %s" % exc.get_error_message()
    if "limit locked memory" in msg:
        msg += (" (memtune.hard_limit and memory_backing.locked make libvirt raise QEMU's locked-memory limit;"
                " that needs libvirtd to hold CAP_SYS_RESOURCE, which containers often drop. Lift memtune.hard_limit"
                " or run libvirtd with that capability)")
    return msg


def run_module(module):
    """Entry point of the ``domain`` module."""
    return DomainManager(module).run()


def _still_active(dom):
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError:
        return False
