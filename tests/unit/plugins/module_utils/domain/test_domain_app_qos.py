"""Per-application traffic classes: canonical form, metadata, tc commands, the hook, live application."""

import io
import os
import signal

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _qos_hook, _tc
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain import appqos
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.devices import stable_mac
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.spec import DomainSpec
from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import parse_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

from conftest import golden

SPEC = DomainSpec()
NAME = "vft-dom-golden"
MAC = "52:54:00:51:05:01"
CLASSES = [dict(name="sap", ports=[3300, 3200], rate="50mbit", priority=1),
           dict(name="exchange", ports=[443], rate=30000, ceil="80Mbit", priority=2),
           dict(name="backup", ports=[10000], protocol="udp", rate="1.25MBps", ceil="20mbit", priority=6)]
NIC = dict(network="vflab-net", mac=MAC, app_qos=dict(link="100mbit", classes=CLASSES))


def plan(params, make_ctx, xml=None, running=False):
    params = dict(params, name=NAME)
    return SPEC.plan(NAME, params, xml if xml is not None else golden("libvirt_filled.xml"),
                     make_ctx(NAME, running=running))


def test_canonical_form_and_metadata_round_trip(make_ctx):
    p = plan(dict(interfaces=[NIC]), make_ctx)
    root = parse_xml(p.after_xml)
    node = root.find("metadata/{urn:virtforge:libvirt:1}instance/{urn:virtforge:libvirt:1}qos")
    assert node.get("mac") == MAC and node.get("link") == "100000000" and node.get("direction") == "both"
    classes = [dict(c.attrib) for c in node]
    assert classes[0] == dict(name="sap", protocol="tcp", ports="3200,3300", rate="50000000", ceil="100000000",
                              priority="1")
    assert classes[1]["rate"] == "30000000" and classes[1]["ceil"] == "80000000"
    assert classes[2]["rate"] == "10000000" and classes[2]["protocol"] == "udp"
    assert not plan(dict(interfaces=[NIC]), make_ctx, xml=p.after_xml).changes
    # other NIC options leave the classes alone; {} removes them
    assert not plan(dict(interfaces=[dict(network="vflab-net", mac=MAC)]), make_ctx, xml=p.after_xml).changes
    p2 = plan(dict(interfaces=[dict(NIC, app_qos={})]), make_ctx, xml=p.after_xml)
    assert [c.path for c in p2.changes] == ["interfaces[%s]" % MAC]
    assert "qos" not in p2.after_xml


def test_purged_nic_takes_its_classes_along(make_ctx):
    xml = plan(dict(interfaces=[NIC]), make_ctx).after_xml
    other = dict(network="vflab-net", mac="52:54:00:51:05:02")
    p = plan(dict(interfaces=[other], purge_interfaces=True), make_ctx, xml=xml)
    assert "qos" not in p.after_xml


def test_tags_and_classes_share_the_metadata(make_ctx):
    xml = plan(dict(interfaces=[NIC], tags=["db"]), make_ctx).after_xml
    p = plan(dict(tags=["db", "prod"]), make_ctx, xml=xml)
    root = parse_xml(p.after_xml)
    instance = root.find("metadata/{urn:virtforge:libvirt:1}instance")
    assert [n.tag.split("}")[1] for n in instance] == ["qos", "tag", "tag"]


class Runner(object):
    def __init__(self, fail=()):
        self.calls = []
        self.fail = fail

    def __call__(self, argv):
        self.calls.append(argv)
        return (1, "", "nope") if any(" ".join(argv).endswith(f) for f in self.fail) else (0, "", "")


def _qos(direction="both"):
    return dict(link=100000000, direction=direction, classes=[
        dict(name="sap", protocol="tcp", ports=[3200], rate=50000000, ceil=100000000, priority=1)])


def test_tc_commands_inbound_outbound():
    inbound = [step[0] for step in _tc.apply_commands("vnet3", MAC, _qos("inbound"))]
    assert inbound[:3] == [["tc", "qdisc", "del", "dev", "vnet3", "root"],
                           ["tc", "qdisc", "del", "dev", "vnet3", "ingress"],
                           ["ip", "link", "del", "vfq525400510501"]]
    assert ["tc", "qdisc", "replace", "dev", "vnet3", "root", "handle", "1:", "htb", "default", "ffff"] in inbound
    assert ["tc", "class", "replace", "dev", "vnet3", "parent", "1:1", "classid", "1:10", "htb", "rate",
            "50000000bit", "ceil", "100000000bit", "prio", "1", "quantum", "200000"] in inbound
    filters = [a for a in inbound if a[1] == "filter"]
    assert len(filters) == 4 and {a[a.index("flowid") - 3] for a in filters} == {"sport", "dport"}
    assert {a[a.index("flowid") - 2] for a in filters} == {"3200"} and {a[-1] for a in filters} == {"1:10"}
    assert not any("vfq525400510501" in a and a[0] == "tc" for a in inbound)
    outbound = [step[0] for step in _tc.apply_commands("vnet3", MAC, _qos("outbound"))]
    assert ["ip", "link", "add", "vfq525400510501", "type", "ifb"] in outbound
    assert not any(a[:5] == ["tc", "qdisc", "replace", "dev", "vnet3"] for a in outbound)
    assert outbound[-1][-4:] == ["egress", "redirect", "dev", "vfq525400510501"]
    # nothing declared: only the removals, which may fail
    assert all(step[1] for step in _tc.apply_commands("vnet3", MAC, {}))
    # a detached NIC has no tap: only its IFB goes
    assert _tc.apply_commands(None, MAC, _qos()) == [(["ip", "link", "del", "vfq525400510501"], True)]
    assert _tc.ifb_name("52:54:00:AB:05:01") == "vfq525400ab0501" and len(_tc.ifb_name(MAC)) == 15


def test_run_steps_prefix_and_errors():
    runner = Runner(fail=("root",))
    _tc.run_steps(_tc.apply_commands("vnet3", MAC, _qos("inbound")), prefix=["nsenter", "--net=/proc/1/ns/net"],
                  runner=runner)
    assert all(c[:2] == ["nsenter", "--net=/proc/1/ns/net"] for c in runner.calls)
    with pytest.raises(_tc.TcError) as info:
        _tc.run_steps([(["tc", "qdisc", "replace", "dev", "x", "root"], False)], runner=Runner(fail=("x root",)))
    assert "rc=1" in str(info.value) and "nope" in str(info.value)


HOOK_XML = """<domain type='qemu'><name>vm1</name>
<metadata><vf:instance xmlns:vf="urn:virtforge:libvirt:1"><vf:tag>x</vf:tag>
<vf:qos mac="52:54:00:51:05:01" direction="inbound" link="100000000">
<vf:class name="sap" protocol="tcp" ports="3200" rate="50000000" ceil="100000000" priority="1"/></vf:qos>
<vf:qos mac="52:54:00:51:05:09" direction="inbound" link="100000000">
<vf:class name="sap" protocol="tcp" ports="3200" rate="50000000" ceil="100000000" priority="1"/></vf:qos>
</vf:instance></metadata>
<devices><interface type='network'><mac address='52:54:00:51:05:01'/><target dev='vnet7'/></interface></devices>
</domain>"""


def test_hook_builds_the_tree_and_never_fails(monkeypatch):
    runner = Runner()
    monkeypatch.setattr(_tc, "_run", runner)
    err = io.StringIO()
    assert _tc.hook_main(["hook", "vm1", "started", "begin", "-"], io.StringIO(HOOK_XML), err) == 0
    assert any(c[:6] == ["tc", "qdisc", "replace", "dev", "vnet7", "root"] for c in runner.calls)
    assert "1 class(es) on vnet7" in err.getvalue() and "52:54:00:51:05:09 has no tap" in err.getvalue()
    runner.calls[:] = []
    assert _tc.hook_main(["hook", "vm1", "prepare", "begin", "-"], io.StringIO(HOOK_XML), err) == 0
    assert runner.calls == []
    assert _tc.hook_main(["hook", "vm1", "stopped", "end", "-"], io.StringIO(HOOK_XML), err) == 0
    assert runner.calls == [["ip", "link", "del", "vfq525400510501"], ["ip", "link", "del", "vfq525400510509"]]
    runner.calls[:] = []
    monkeypatch.setattr(_tc, "_run", Runner(fail=("default ffff",)))
    err = io.StringIO()
    assert _tc.hook_main(["hook", "vm1", "started", "begin", "-"], io.StringIO(HOOK_XML), err) == 0
    assert "failed" in err.getvalue()
    assert _tc.hook_main(["hook", "vm1", "started", "begin", "-"], io.StringIO("<not xml"), io.StringIO()) == 0


class FakeTarget(object):
    def __init__(self, xml):
        self.xml = xml
        self.metadata = []
        self.attached = []

    def XMLDesc(self, flags):
        return self.xml

    def setMetadata(self, kind, text, prefix, ns, flags):
        self.metadata.append(text)

    def attachDeviceFlags(self, xml, flags):
        self.attached.append(xml)


def test_live_change_runs_tc_in_the_qemu_netns(make_ctx, tmp_path, monkeypatch, host):
    monkeypatch.setattr(appqos, "QEMU_PID_DIR", str(tmp_path))
    (tmp_path / (NAME + ".pid")).write_text("4242\n")
    host.uri = "qemu:///system"
    xml = plan(dict(interfaces=[NIC]), make_ctx).after_xml
    changed = dict(NIC, app_qos=dict(link="100mbit", classes=CLASSES[:1]))
    p = plan(dict(interfaces=[changed]), make_ctx, xml=xml, running=True)
    assert [(c.path, c.live) for c in p.changes] == [("interfaces[%s]" % MAC, True)] and not p.restart_required
    live_xml = xml.replace("<mac address=\"%s\"/>" % MAC, "<mac address=\"%s\"/><target dev=\"vnet5\"/>" % MAC)
    target = FakeTarget(live_xml)
    runner = Runner()
    monkeypatch.setattr(_tc, "_run", runner)
    ctx = make_ctx(NAME, running=True)
    ctx["plan_after_root"] = parse_xml(p.after_xml)
    ctx["plan_before_root"] = parse_xml(p.before_xml)
    SPEC.apply_live(target, p, ctx)
    assert runner.calls and all(c[:2] == ["nsenter", "--net=/proc/4242/ns/net"] for c in runner.calls)
    assert sum(1 for c in runner.calls if c[2:4] == ["tc", "class"]) == 2 * 3  # tap and IFB: root, sap, default
    assert target.metadata and "<qos" in target.metadata[-1] and "exchange" not in target.metadata[-1]
    # a remote URI: nothing run, a warning
    host.uri = "qemu+ssh://kvm2/system"
    runner.calls[:] = []
    SPEC.apply_live(target, p, ctx)
    assert runner.calls == [] and "apply when the domain next starts" in host.warnings[-1]


def test_hook_missing_is_warned(make_ctx, host, monkeypatch):
    host.local_files = True
    monkeypatch.setattr(appqos, "HOOK_PATH", "/nonexistent/virtforge-qos")
    plan(dict(interfaces=[NIC]), make_ctx)
    assert any("qos_hook" in w for w in host.warnings)


@pytest.mark.parametrize("qos, option, text", [
    (dict(link="10mbit", classes=[dict(name="a", ports=[1], rate="8mbit"), dict(name="b", ports=[2], rate="8mbit")]),
     "app_qos.classes", "more than the link"),
    (dict(link="10mbit", classes=[dict(name="a", ports=[1, 2], rate=100), dict(name="b", ports=[2], rate=100)]),
     "app_qos.classes[1].ports", "already in class 'a'"),
    (dict(link="10mbit", classes=[dict(name="a", ports=[1], rate=100), dict(name="a", ports=[2], rate=100)]),
     "app_qos.classes[1].name", "declared twice"),
    (dict(link="10mbit", classes=[dict(name="a", ports=[1], rate="5mbit", ceil="2mbit")]),
     "app_qos.classes[0].ceil", "below rate"),
    (dict(link="10mbit", classes=[dict(name="a", ports=[1], rate="5mbit", ceil="20mbit")]),
     "app_qos.classes[0].ceil", "above the NIC's link rate"),
    (dict(classes=[dict(name="a", ports=[1], rate="5mbit")]), "app_qos.link", "total rate is needed"),
    (dict(link="10mbit", classes=[dict(name="a", ports=[0], rate=100)]), "app_qos.classes[0].ports", "not a port"),
    (dict(link="10mbit", classes=[dict(name="a", ports=[], rate=100)]), "app_qos.classes[0].ports", "at least one"),
    (dict(link="10 furlongs", classes=[dict(name="a", ports=[1], rate=100)]), "app_qos.link", "not a rate"),
    (dict(link="10mbit", classes=[dict(name="a", ports=[1], rate="1bit")]), "app_qos.classes[0].rate", "minimum"),
    (dict(link="10mbit", classes=[dict(name="a", ports=[1], rate=100, priority=8)]), "app_qos.classes[0].priority",
     "out of range"),
    (dict(link="10mbit", classes=[dict(name="a/b", ports=[1], rate=100)]), "app_qos.classes[0].name",
     "not a class name"),
])
def test_bad_app_qos(qos, option, text, make_ctx):
    with pytest.raises(VirtforgeError) as info:
        plan(dict(interfaces=[dict(network="vflab-net", mac=MAC, app_qos=qos)]), make_ctx)
    assert info.value.option == "interfaces[0]." + option
    assert text in info.value.msg


def test_app_qos_needs_a_tap_and_no_libvirt_shaping_on_the_same_side(make_ctx):
    qos = dict(link="10mbit", classes=[dict(name="a", ports=[1], rate=100)])
    with pytest.raises(VirtforgeError) as info:
        plan(dict(interfaces=[dict(type="user", app_qos=qos)]), make_ctx)
    assert info.value.option == "interfaces[0].app_qos" and "tap" in info.value.msg
    with pytest.raises(VirtforgeError) as info:
        plan(dict(interfaces=[dict(network="vflab-net", bandwidth=dict(outbound=dict(average=100)),
                                   app_qos=qos)]), make_ctx)
    assert info.value.option == "interfaces[0].app_qos.direction"
    # the other side is fine
    p = plan(dict(interfaces=[dict(network="vflab-net", bandwidth=dict(outbound=dict(average=100)),
                                   app_qos=dict(qos, direction="inbound"))]), make_ctx)
    assert "qos" in p.after_xml and stable_mac(NAME, 0) in p.after_xml


def test_hook_install_idempotent_check_absent(tmp_path, monkeypatch):
    path = str(tmp_path / "hooks" / "qemu.d" / "virtforge-qos")
    reloads = []
    monkeypatch.setattr(_qos_hook, "reload_daemon", lambda run=None: reloads.append(1) or "libvirtd")
    params = dict(state="present", path=path, python="/usr/bin/python3", reload=True)
    res = _qos_hook.run(params, check_mode=True)
    assert res["changed"] and not os.path.exists(path) and not reloads
    res = _qos_hook.run(params, check_mode=False)
    assert res["changed"] and res["reloaded"] == "libvirtd" and os.access(path, os.X_OK)
    text = open(path).read()
    assert text.startswith("#!/usr/bin/python3\n") and "def hook_main" in text
    assert os.listdir(os.path.dirname(path)) == ["virtforge-qos"]  # no temporary file left
    res = _qos_hook.run(params, check_mode=False)
    assert not res["changed"] and len(reloads) == 1
    res = _qos_hook.run(dict(params, python="/opt/py/bin/python3"), check_mode=False)
    assert res["changed"] and res["reloaded"] is None  # an update needs no reload
    res = _qos_hook.run(dict(params, state="absent"), check_mode=False)
    assert res["changed"] and not os.path.exists(path)
    assert not _qos_hook.run(dict(params, state="absent"), check_mode=False)["changed"]


def test_reload_by_pid_file(tmp_path, monkeypatch):
    monkeypatch.setattr(os.path, "isdir", lambda p: False)
    (tmp_path / "libvirtd.pid").write_text("777\n")
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    assert _qos_hook.reload_daemon(pid_dir=str(tmp_path)) == "libvirtd"
    assert sent == [(777, signal.SIGHUP)]
    with pytest.raises(VirtforgeError) as info:
        _qos_hook.reload_daemon(pid_dir=str(tmp_path / "none"))
    assert info.value.option == "reload"
