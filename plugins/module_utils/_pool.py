# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt storage pools, declarative, on the XML engine; and the lifecycle shared with networks.

A changed definition of an existing pool is applied: the persistent definition is redefined at
once; an active pool picks it up only when restarted, which happens with ``allow_restart: true``
(otherwise ``restart_required`` is reported).
"""

from __future__ import annotations

import os
import re

from ._engine import DocumentSpec, OptionGroup, Plan, child, parse_xml, path_element, remove, to_xml
from ._errors import VirtforgeError
from ._libvirt import libvirt
from ._validate import check_name

POOL_TYPES = ("dir", "fs", "netfs", "logical", "disk", "iscsi")
# elements libvirt reports about the live state of a pool; not part of what is declared
_POOL_STATUS = ("capacity", "allocation", "available")


def inactive_xml(obj, flag):
    """The persistent definition; drivers without the INACTIVE flag (libvirt's test driver)
    keep one definition only, which is then returned."""
    try:
        return obj.XMLDesc(flag)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        return obj.XMLDesc(0)


def _norm_path(value):
    return os.path.normpath(value) if value else value


class NameGroup(OptionGroup):
    """The object's <name>; written when the object is created."""

    name = "name"
    argument_spec = dict(name=dict(type="str", required=True))

    def desired(self, params, ctx):
        return dict(name=params["name"])

    def current(self, root, ctx):
        return dict(name=root.findtext("name"))

    def write(self, root, desired, ctx):
        node = child(root, "name", create=True)
        node.text = desired["name"]
        root.insert(0, node)


class PoolTypeGroup(OptionGroup):
    name = "type"
    argument_spec = dict(type=dict(type="str", choices=list(POOL_TYPES)))

    def desired(self, params, ctx):
        return dict(type=params["type"]) if params.get("type") else {}

    def current(self, root, ctx):
        return dict(type=root.get("type"))

    def write(self, root, desired, ctx):
        root.set("type", desired["type"])


def octal_mode(value, option):
    if value is None:
        return None
    text = str(value).strip()
    if not re.match(r"^0?[0-7]{3,4}$", text):
        raise VirtforgeError("%r is not an octal mode" % (value,), option=option,
                             fix="Quote it as a string, e.g. '0755'")
    return "%04o" % int(text, 8)


def id_number(value, option):
    if value is None:
        return None
    text = str(value).strip()
    if not re.match(r"^-?\d+$", text):
        raise VirtforgeError("%r is not a numeric user or group id" % (value,), option=option,
                             fix="libvirt stores numeric ids: give the uid/gid, e.g. 107")
    return int(text)


class PoolTargetGroup(OptionGroup):
    """<target><path/><permissions/></target>."""

    name = "target"
    argument_spec = dict(
        target=dict(type="path"),
        permissions=dict(type="dict", options=dict(
            mode=dict(type="str"), owner=dict(type="str"), group=dict(type="str"), label=dict(type="str"))),
    )

    def desired(self, params, ctx):
        out = {}
        if params.get("target"):
            if not os.path.isabs(params["target"]):
                raise VirtforgeError("%r is not an absolute path" % params["target"], option="target")
            out["path"] = _norm_path(params["target"])
        perms = params.get("permissions") or {}
        if perms.get("mode") is not None:
            out["mode"] = octal_mode(perms["mode"], "permissions.mode")
        for key in ("owner", "group"):
            if perms.get(key) is not None:
                out[key] = id_number(perms[key], "permissions.%s" % key)
        if perms.get("label") is not None:
            out["label"] = perms["label"]
        return out

    def current(self, root, ctx):
        out = dict(path=_norm_path(root.findtext("target/path")))
        out["mode"] = octal_mode(root.findtext("target/permissions/mode"), "permissions.mode") \
            if root.findtext("target/permissions/mode") else None
        for key in ("owner", "group"):
            text = root.findtext("target/permissions/%s" % key)
            out[key] = int(text) if text not in (None, "") else None
        out["label"] = root.findtext("target/permissions/label")
        return out

    def write(self, root, desired, ctx):
        target = child(root, "target", create=True)
        if "path" in desired:
            path_element(target, "path", create=True).text = desired["path"]
        for key in ("mode", "owner", "group", "label"):
            if key in desired:
                perms = child(target, "permissions", create=True)
                child(perms, key, create=True).text = str(desired[key])


class PoolSourceGroup(OptionGroup):
    """<source>: host, dir, devices, name (VG), format, initiator IQN."""

    name = "source"
    argument_spec = dict(source=dict(type="dict", options=dict(
        host=dict(type="str"),
        port=dict(type="int"),
        dir=dict(type="str"),
        devices=dict(type="list", elements="str", aliases=["device"]),
        name=dict(type="str"),
        format=dict(type="str"),
        initiator=dict(type="str"),
    )))

    def desired(self, params, ctx):
        src = params.get("source") or {}
        out = {}
        for key in ("host", "port", "name", "format", "initiator"):
            if src.get(key) is not None:
                out[key] = src[key]
        if src.get("dir") is not None:
            out["dir"] = _norm_path(src["dir"])
        if src.get("devices") is not None:
            out["devices"] = list(src["devices"])
        return out

    def current(self, root, ctx):
        src = root.find("source")
        out = dict(host=None, port=None, dir=None, devices=[], name=None, format=None, initiator=None)
        if src is None:
            return out
        host = src.find("host")
        if host is not None:
            out["host"] = host.get("name")
            out["port"] = int(host.get("port")) if host.get("port") else None
        node = src.find("dir")
        out["dir"] = _norm_path(node.get("path")) if node is not None else None
        out["devices"] = [d.get("path") for d in src.iterfind("device")]
        out["name"] = src.findtext("name")
        node = src.find("format")
        out["format"] = node.get("type") if node is not None else None
        node = src.find("initiator/iqn")
        out["initiator"] = node.get("name") if node is not None else None
        return out

    def write(self, root, desired, ctx):
        src = child(root, "source", create=True)
        if "host" in desired or "port" in desired:
            host = child(src, "host", create=True)
            if "host" in desired:
                host.set("name", desired["host"])
            if "port" in desired:
                host.set("port", str(desired["port"]))
        if "dir" in desired:
            child(src, "dir", create=True).set("path", desired["dir"])
        if "devices" in desired:
            for node in list(src.iterfind("device")):
                remove(node)
            for dev in desired["devices"]:
                node = child(src, "device", create=False, path=dev)
                if node is None:
                    node = child(src, "device", create=True, path=dev)
        if "name" in desired:
            child(src, "name", create=True).text = desired["name"]
        if "format" in desired:
            child(src, "format", create=True).set("type", desired["format"])
        if "initiator" in desired:
            path_element(src, "initiator/iqn", create=True).set("name", desired["initiator"])


# what each pool type needs, checked when a pool is created
_POOL_NEEDS = {
    "dir": (("target", "path"),),
    "fs": (("target", "path"), ("source", "devices")),
    "netfs": (("target", "path"), ("source", "host"), ("source", "dir")),
    "logical": (),
    "disk": (("source", "devices"),),
    "iscsi": (("source", "host"), ("source", "devices")),
}
_POOL_DEFAULT_TARGET = {"disk": "/dev", "iscsi": "/dev/disk/by-path"}


class PoolSpec(DocumentSpec):
    kind = "pool"
    root_tag = "pool"
    groups = (NameGroup(), PoolTypeGroup(), PoolSourceGroup(), PoolTargetGroup())

    def new_root(self, ctx):
        root = super().new_root(ctx)
        root.set("type", ctx["params"].get("type") or "dir")
        return root

    def validate(self, params, exists):
        """Type-specific checks for a new pool, before anything is defined."""
        check_name(params["name"], option="name", kind="pool name")
        if exists:
            return
        ptype = params.get("type") or "dir"
        src = params.get("source") or {}
        if ptype in _POOL_DEFAULT_TARGET and not params.get("target"):
            params["target"] = _POOL_DEFAULT_TARGET[ptype]
        if ptype == "logical" and not (src.get("name") or src.get("devices")):
            raise VirtforgeError("a logical pool needs source.name (the volume group) or source.devices",
                                 option="source.name")
        for group, key in _POOL_NEEDS[ptype]:
            value = params.get("target") if group == "target" else src.get(key)
            if not value:
                option = "target" if group == "target" else "source.%s" % key
                raise VirtforgeError("required to create a pool of type %s" % ptype, option=option)


# ---------------------------------------------------------------------------------------------
# lifecycle shared by pools and networks


STATE_CHOICES = ["present", "active", "inactive", "absent"]
LIFECYCLE_ARGSPEC = dict(
    state=dict(type="str", default="present", choices=STATE_CHOICES),
    autostart=dict(type="bool"),
    allow_restart=dict(type="bool", default=False),
)


class ObjectManager(object):
    """Plan and apply one pool or network: definition (through the spec), state, autostart."""

    spec = None
    kind = None

    def __init__(self, module, conn):
        self.module = module
        self.params = module.params
        self.conn = conn
        self.warnings = []

    # hooks ---------------------------------------------------------------------------------
    def lookup(self, name):
        raise NotImplementedError

    def current_xml(self, obj):
        """The persistent (inactive) definition."""
        raise NotImplementedError

    def live_xml(self, obj):
        """The definition the active object runs with."""
        raise NotImplementedError

    def define(self, xml):
        raise NotImplementedError

    def start(self, obj):
        obj.create()

    def extra_notes(self, plan, obj, ctx):
        """Object-specific steps to add to the plan (build, delete...)."""

    def before_start(self, obj, plan):
        """Called after (re)definition, before the object is started."""

    def after_restart(self, obj, plan, result):
        """Called after a restart (networks reconnect guests)."""

    def remove(self, obj, plan):
        if obj.isActive():
            obj.destroy()
        obj.undefine()

    # planning ------------------------------------------------------------------------------
    def plan(self):
        params = self.params
        name = params["name"]
        check_name(name, option="name", kind="%s name" % self.kind)
        obj = self.lookup(name)
        self.spec.validate(params, obj is not None or params["state"] == "absent")
        running = bool(obj is not None and obj.isActive())
        ctx = dict(params=params, running=running, conn=self.conn, obj=obj)
        state = params["state"]
        if state == "absent":
            plan = Plan(name, self.kind, self.current_xml(obj) if obj else None, None,
                        action="remove" if obj is not None else None)
            plan.desired = {}
            plan.restart = False
            plan.live_plan = None
            if obj is not None:
                self.extra_notes(plan, obj, ctx)
            return obj, plan, ctx
        plan = self.spec.plan(name, params, self.current_xml(obj) if obj else None, ctx)
        # An active object runs on its live definition: a change redefined earlier without a
        # restart is still pending there, so compare the live definition too.
        plan.live_changes = []
        plan.live_plan = None
        if running:
            plan.live_plan = self.spec.plan(name, params, self.live_xml(obj), ctx)
            plan.live_changes = [c for c in plan.live_plan.changes if c.live is False]
        want_running = running if state == "present" else state == "active"
        if obj is None and state == "present":
            want_running = False
        plan.restart = False
        plan.restart_pending = False
        if running and want_running and plan.live_changes:
            if params["allow_restart"]:
                plan.restart = True
                plan.notes.append("restart")
            else:
                plan.restart_pending = True
        if running and want_running and not plan.restart and plan.live_plan is not None:
            persistent = {c.path for c in plan.changes}
            for change in plan.live_plan.changes:
                if change.live and change.path not in persistent:
                    plan.notes.append("live %s" % change.path)
        if want_running and not running:
            plan.notes.append("start")
        if running and not want_running:
            plan.notes.append("stop")
        if params.get("autostart") is not None:
            have = bool(obj.autostart()) if obj is not None else False
            if have != params["autostart"]:
                plan.notes.append("autostart %s" % ("on" if params["autostart"] else "off"))
        self.extra_notes(plan, obj, ctx)
        return obj, plan, ctx

    # applying ------------------------------------------------------------------------------
    def apply(self, obj, plan, ctx, result):
        params = self.params
        if params["state"] == "absent":
            if obj is not None:
                self.remove(obj, plan)
            return
        if plan.action in ("create", "update"):
            obj = self.define(plan.after_xml)
        if plan.live_plan is not None and not plan.restart and "stop" not in plan.notes:
            self.spec.apply_live(obj, plan.live_plan, ctx)
        if "restart" in plan.notes or "stop" in plan.notes:
            obj.destroy()
        self.before_start(obj, plan)
        if "restart" in plan.notes or "start" in plan.notes:
            self.start(obj)
        if "restart" in plan.notes:
            self.after_restart(obj, plan, result)
        for note in plan.notes:
            if note.startswith("autostart"):
                obj.setAutostart(1 if note.endswith("on") else 0)

    def run(self):
        obj, plan, ctx = self.plan()
        result = dict(changed=plan.changed, name=self.params["name"], changes=plan.change_list())
        live_pending = sorted({c.path for c in getattr(plan, "live_changes", [])})
        result["restart_required"] = bool(getattr(plan, "restart_pending", False))
        if result["restart_required"]:
            self.warnings.append(
                "%s %s is active and changes %s take effect only after a restart; set allow_restart: true "
                "to restart it" % (self.kind, self.params["name"], ", ".join(live_pending)))
        if plan.changed and not self.module.check_mode:
            self.apply(obj, plan, ctx, result)
        if self.module._diff:
            result["diff"] = plan.diff()
        result["xml"] = plan.after_xml if self.params["state"] != "absent" else None
        final = self.lookup(self.params["name"]) if not self.module.check_mode else None
        if final is not None:
            result["active"] = bool(final.isActive())
            result["autostart"] = bool(final.autostart())
            result["xml"] = self.current_xml(final)
        elif self.module.check_mode:
            state = self.params["state"]
            result["active"] = (state == "active" or (state == "present" and ctx["running"]))
            if self.params.get("autostart") is not None and state != "absent":
                result["autostart"] = self.params["autostart"]
        else:
            result["active"] = False
        return result


# ---------------------------------------------------------------------------------------------
# pools


POOL_ARGSPEC = dict(LIFECYCLE_ARGSPEC, **PoolSpec().argument_spec())
POOL_ARGSPEC.update(
    build=dict(type="bool", default=False),
    delete=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
)


class PoolManager(ObjectManager):
    spec = PoolSpec()
    kind = "pool"

    def lookup(self, name):
        try:
            return self.conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
                return None
            raise

    def current_xml(self, obj):
        root = parse_xml(inactive_xml(obj, libvirt.VIR_STORAGE_XML_INACTIVE))
        for tag in _POOL_STATUS:
            remove(root.find(tag))
        return to_xml(root)

    def live_xml(self, obj):
        return obj.XMLDesc(0)

    def define(self, xml):
        return self.conn.storagePoolDefineXML(xml, 0)

    def start(self, obj):
        obj.create(0)

    def extra_notes(self, plan, obj, ctx):
        params = self.params
        if params["state"] == "absent":
            if params["delete"]:
                volumes = self._volumes(obj)
                if volumes and not params["force"]:
                    raise VirtforgeError(
                        "pool %s still holds %d volume(s): %s" % (params["name"], len(volumes),
                                                                  ", ".join(sorted(volumes)[:10])),
                        option="delete", fix="Remove the volumes first, or set force: true to delete them too")
                plan.notes.append("delete storage")
            return
        if params["build"]:
            # build (mkdir for dir pools) needs an inactive pool: when it is created, or when its
            # storage moved and the pool is (re)started by this run
            moved = any(c.group in ("target", "source", "type") for c in plan.changes + plan.live_changes)
            inactive_now = not ctx["running"] or plan.restart or "stop" in plan.notes
            if plan.action == "create" or (moved and inactive_now):
                plan.notes.insert(0, "build")

    def _volumes(self, obj):
        if obj.isActive():
            obj.refresh(0)
            return [v.name() for v in obj.listAllVolumes(0)]
        root = parse_xml(inactive_xml(obj, libvirt.VIR_STORAGE_XML_INACTIVE))
        target = root.findtext("target/path")
        if root.get("type") in ("dir", "fs", "netfs") and target and os.path.isdir(target):
            return os.listdir(target) if root.get("type") == "dir" else []
        return []

    def before_start(self, obj, plan):
        if "build" in plan.notes:
            flags = 0 if self.params.get("type") in (None, "dir") else libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE
            obj.build(flags)

    def remove(self, obj, plan):
        if "delete storage" in plan.notes:
            if self.params["force"]:
                if not obj.isActive():
                    obj.create(0)
                obj.refresh(0)
                for vol in obj.listAllVolumes(0):
                    vol.delete(0)
            if obj.isActive():
                obj.destroy()
            obj.delete(0)
        elif obj.isActive():
            obj.destroy()
        obj.undefine()


def run_pool(module, conn):
    manager = PoolManager(module, conn)
    result = manager.run()
    for warning in manager.warnings:
        module.warn(warning)
    return result
