"""The declarative engine on a toy document: only what the user set is compared and written."""

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _engine as eng
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError


class Memory(eng.OptionGroup):
    name = "memory"
    argument_spec = dict(memory=dict(type="int"), max_memory=dict(type="int"))
    live_keys = frozenset(["current"])

    def desired(self, params, ctx):
        out = {}
        if params.get("memory") is not None:
            out["current"] = params["memory"]
        if params.get("max_memory") is not None:
            out["max"] = params["max_memory"]
        return out

    def current(self, root, ctx):
        out = {}
        node = root.find("currentMemory")
        if node is not None:
            out["current"] = int(node.text)
        node = root.find("memory")
        if node is not None:
            out["max"] = int(node.text)
        return out

    def write(self, root, desired, ctx):
        if "current" in desired:
            eng.set_text(root, "currentMemory", desired["current"])
        if "max" in desired:
            eng.set_text(root, "memory", desired["max"])

    def apply_live(self, target, changes, desired, ctx):
        target.append(("memory", desired["current"]))


class Disks(eng.ListGroup):
    name = "disks"
    argument_spec = dict(disks=dict(type="list", elements="dict"), purge_disks=dict(type="bool", default=False))
    hotplug = True

    def item_key(self, item):
        return item["dev"]

    def desired_items(self, params, ctx):
        return params.get("disks")

    def read_items(self, root, ctx):
        return [dict(dev=d.find("target").get("dev"), path=d.find("source").get("file"))
                for d in root.iterfind("devices/disk")]

    def find_element(self, root, key, ctx):
        for disk in root.iterfind("devices/disk"):
            if disk.find("target").get("dev") == key:
                return disk
        return None

    def write_item(self, root, element, item, ctx):
        if element is None:
            element = eng.etree.SubElement(eng.path_element(root, "devices", create=True), "disk")
            eng.etree.SubElement(element, "target", dev=item["dev"])
            eng.etree.SubElement(element, "source")
        if item.get("path") is not None:
            element.find("source").set("file", item["path"])
        return element


class Toy(eng.DocumentSpec):
    kind = "toy"
    root_tag = "domain"
    groups = (Memory(), Disks())


EXISTING = """<domain><memory>4096</memory><currentMemory>2048</currentMemory><devices>
<disk><target dev='vda'/><source file='/a'/><address bus='0'/></disk>
<disk><target dev='vdb'/><source file='/b'/></disk></devices></domain>"""


def test_argument_spec_is_the_union():
    assert set(Toy().argument_spec()) == {"memory", "max_memory", "disks", "purge_disks"}


def test_create_writes_only_what_was_set():
    plan = Toy().plan("t", dict(memory=1024), None, {})
    assert plan.action == "create" and plan.changed
    assert "<currentMemory>1024</currentMemory>" in plan.after_xml
    assert "<memory>" not in plan.after_xml


def test_unset_options_never_diff():
    plan = Toy().plan("t", dict(memory=None, max_memory=None, disks=None), EXISTING, {})
    assert not plan.changed and plan.changes == []
    assert plan.before_xml == plan.after_xml


def test_change_is_live_only_for_live_keys_when_running():
    spec = Toy()
    plan = spec.plan("t", dict(memory=1024, max_memory=8192), EXISTING, {"running": True})
    live = {c.path: c.live for c in plan.changes}
    assert live == {"memory.current": True, "memory.max": False}
    assert plan.restart_required
    target = []
    spec.apply_live(target, plan, {})
    assert target == [("memory", 1024)]


def test_not_running_means_no_live_flag():
    plan = Toy().plan("t", dict(memory=1024), EXISTING, {"running": False})
    assert [c.live for c in plan.changes] == [None]
    assert not plan.restart_required


def test_list_items_added_updated_kept_and_untouched_fields_survive():
    plan = Toy().plan("t", dict(disks=[dict(dev="vda", path="/new"), dict(dev="vdc", path="/c")]), EXISTING, {})
    actions = {c.path: c.action for c in plan.changes}
    assert actions == {"disks[vda]": "update", "disks[vdc]": "add"}
    after = eng.parse_xml(plan.after_xml)
    assert after.find("devices/disk/address").get("bus") == "0"  # what libvirt filled in stays
    assert [d.find("target").get("dev") for d in after.iterfind("devices/disk")] == ["vda", "vdb", "vdc"]


def test_purge_removes_unlisted_items():
    plan = Toy().plan("t", dict(disks=[dict(dev="vda", path="/a")], purge_disks=True), EXISTING, {"running": True})
    assert [(c.path, c.action, c.live) for c in plan.changes] == [("disks[vdb]", "remove", True)]
    after = eng.parse_xml(plan.after_xml)
    assert [d.find("target").get("dev") for d in after.iterfind("devices/disk")] == ["vda"]


def test_same_list_is_idempotent():
    plan = Toy().plan("t", dict(disks=[dict(dev="vdb", path="/b")]), EXISTING, {})
    assert not plan.changed


def test_diff_and_change_list():
    plan = Toy().plan("t", dict(memory=1), EXISTING, {})
    diff = plan.diff()
    assert diff["before_header"] == "toy t (before)"
    assert "2048" in diff["before"] and "<currentMemory>1<" in diff["after"]
    assert plan.change_list() == [dict(path="memory.current", action="update", before=2048, after=1)]


@pytest.mark.parametrize("text", ["<domain>", "not xml", "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>"])
def test_parse_xml_refuses_bad_input(text):
    try:
        root = eng.parse_xml(text, option="xml")
    except VirtforgeError as err:
        assert err.option == "xml"
        return
    # entities are never resolved
    assert "root:" not in eng.to_xml(root)
