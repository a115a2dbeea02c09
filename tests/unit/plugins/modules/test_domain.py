"""The domain module against libvirt's test:///default driver (one fresh driver per connection)."""

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt
from ansible_collections.virtforge.libvirt.plugins.modules import domain as domain_module

libvirt = pytest.importorskip("libvirt")


class Exit(Exception):
    def __init__(self, kind, result):
        super().__init__(kind)
        self.kind = kind
        self.result = result


@pytest.fixture
def conn(monkeypatch):
    """One test:///default connection shared by every module run of a test (state persists)."""
    c = libvirt.open("test:///default")
    real_connect = _libvirt.connect

    def fake_connect(uri=None, readonly=False):
        assert uri == "test:///default"
        return c

    monkeypatch.setattr(_libvirt, "connect", fake_connect)
    monkeypatch.setattr(_libvirt, "choose_domain_type",
                        lambda conn, uri=None, requested=None, warn=None: requested or "test")
    from ansible_collections.virtforge.libvirt.plugins.module_utils._domain import context
    monkeypatch.setattr(context, "choose_domain_type",
                        lambda conn, uri=None, requested=None, warn=None: requested or "test")

    def exit_json(self, **kw):
        raise Exit("exit", kw)

    def fail_json(self, **kw):
        raise Exit("fail", kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: None)
    yield c
    del real_connect


def run(args, check=False, diff=False):
    args = dict(args, uri="test:///default")
    if check:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        with pytest.raises(Exit) as info:
            domain_module.main()
    return info.value


def ok(args, **kw):
    res = run(args, **kw)
    assert res.kind == "exit", res.result
    return res.result


def fail(args, **kw):
    res = run(args, **kw)
    assert res.kind == "fail", res.result
    return res.result


DISK = "/guest/diskimage1"  # not checked: test:// URIs are not local QEMU


def test_define_idempotent_check_and_diff(conn):
    args = dict(name="vft-dom-u1", vcpus=2, memory="256MiB", disks=[dict(path=DISK, format="qcow2")],
                interfaces=[dict(network="default")], tags=["b", "a"], title="hello")
    res = ok(args, check=True, diff=True)
    assert res["changed"] and res["domain"]["state"] == "present" or res["domain"]["state"] == "stopped"
    assert "vft-dom-u1" not in [d.name() for d in conn.listAllDomains()]
    assert "<vcpu" in res["diff"]["after"] and res["diff"]["before"] == ""
    res = ok(args)
    assert res["changed"]
    xml = conn.lookupByName("vft-dom-u1").XMLDesc(0)
    assert "<memory unit='KiB'>262144</memory>" in xml
    assert "org.qemu.guest_agent.0" in xml
    res = ok(args, check=True)
    assert not res["changed"], res["changes"]
    res = ok(args)
    assert not res["changed"], res["changes"]
    print(json.dumps(res, indent=1))


def names(conn):
    return sorted(d.name() for d in conn.listAllDomains())


def test_batch_shared_defaults_and_idempotency(conn):
    args = dict(state="running", memory=128, tags=["batch"], interfaces=[dict(network="default")],
                domains=[dict(name="vft-dom-b1", disks=[dict(path=DISK)]),
                         dict(name="vft-dom-b2", memory="256M"),
                         dict(name="vft-dom-b3", state="present")])
    before = names(conn)
    res = ok(args, check=True, diff=True)
    assert res["changed"] and [d["name"] for d in res["domains"]] == ["vft-dom-b1", "vft-dom-b2", "vft-dom-b3"]
    assert len(res["diff"]) == 3 and names(conn) == before
    res = ok(args)
    assert [d["state"] for d in res["domains"]] == ["running", "running", "stopped"]
    assert {c["domain"] for c in res["changes"]} == {"vft-dom-b1", "vft-dom-b2"}  # b3: created, no state change
    assert all(d["changed"] for d in res["domains"])
    xml = conn.lookupByName("vft-dom-b2").XMLDesc(2)
    assert "<currentMemory unit='KiB'>262144</currentMemory>" in xml and "<vf:tag>batch</vf:tag>" in xml
    assert "<currentMemory unit='KiB'>131072</currentMemory>" in conn.lookupByName("vft-dom-b1").XMLDesc(2)
    res = ok(args, check=True)
    assert not res["changed"], res["changes"]
    res = ok(args)
    assert not res["changed"] and res["changes"] == []
    # the two NICs of the batch got different stable MACs
    macs = {conn.lookupByName(n).XMLDesc(2).split("mac address='")[1][:17] for n in ("vft-dom-b1", "vft-dom-b2")}
    assert len(macs) == 2


def test_states_and_check_mode(conn):
    base = dict(name="vft-dom-s", memory=128)
    ok(dict(base, state="running"))
    dom = conn.lookupByName("vft-dom-s")
    assert dom.isActive()
    res = ok(dict(base, state="paused"), check=True)
    assert res["changed"] and res["domain"]["state"] == "paused"
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    res = ok(dict(base, state="paused"))
    assert res["changed"] and dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    assert not ok(dict(base, state="paused"))["changed"]
    res = ok(dict(base, state="stopped"))
    assert res["changed"] and res["domain"]["state"] == "stopped" and not dom.isActive()
    assert not ok(dict(base, state="stopped"))["changed"]
    res = ok(dict(base, state="absent"), check=True)
    assert res["changed"] and "vft-dom-s" in names(conn)
    res = ok(dict(base, state="absent"))
    assert res["changed"] and res["domain"]["state"] == "absent" and "vft-dom-s" not in names(conn)
    assert not ok(dict(base, state="absent"))["changed"]


def test_live_changes_on_a_running_domain(conn):
    base = dict(name="vft-dom-l", vcpus=1, max_vcpus=2, memory=128, max_memory=256, state="running")
    ok(base)
    res = ok(dict(base, vcpus=2, memory=192, title="live title"))
    assert res["changed"] and not res["restart_required"]
    assert {c["path"]: c["live"] for c in res["changes"]} == {
        "identity.title": True, "cpu.vcpus": True, "memory.memory": True}
    dom = conn.lookupByName("vft-dom-l")
    assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) == 2
    assert dom.metadata(libvirt.VIR_DOMAIN_METADATA_TITLE, None, libvirt.VIR_DOMAIN_AFFECT_LIVE) == "live title"
    # raising a maximum: persistent only, restart required, reported again until restarted
    res = ok(dict(base, vcpus=2, max_vcpus=4))
    assert res["changed"] and res["restart_required"]
    res = ok(dict(base, vcpus=2, max_vcpus=4))
    assert not res["changed"] and res["restart_required"] and res["domain"]["pending_restart"] == ["cpu.max_vcpus"]
    res = ok(dict(base, vcpus=2, max_vcpus=4, allow_restart=True))
    assert res["changed"] and not res["restart_required"]
    assert [c["path"] for c in res["changes"]] == ["restart"]
    assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_VCPU_MAXIMUM) == 4
    assert not ok(dict(base, vcpus=2, max_vcpus=4))["restart_required"]


def test_bad_batch_item_creates_nothing(conn):
    before = names(conn)
    items = [dict(name="vft-dom-ok"), dict(name="vft-dom-x", vcpus=0), dict(name="vft-dom-ok2")]
    res = fail(dict(state="running", domains=items))
    assert res["msg"].startswith("domains[1].vcpus:")
    assert names(conn) == before
    res = fail(dict(domains=[dict(name="vft-dom-ok"), dict(name="vft-dom-ok")]))
    assert res["msg"].startswith("domains[1].name:") and "twice" in res["msg"]
    res = fail(dict(name="vft-dom-x", xml="<domain><name>other</name></domain>"))
    assert res["msg"].startswith("xml:")
    res = fail(dict(name="bad/name"))
    assert res["msg"].startswith("name:")
    assert names(conn) == before


def test_xml_base_and_name_from_xml(conn):
    xml = ("<domain type='test'><name>vft-dom-xml</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
           "<os><type>hvm</type></os><devices/></domain>")
    res = ok(dict(xml=xml, memory=96))
    assert res["changed"] and res["domain"]["name"] == "vft-dom-xml"
    assert "<currentMemory unit='KiB'>98304</currentMemory>" in conn.lookupByName("vft-dom-xml").XMLDesc(2)
    assert not ok(dict(xml=xml, memory=96))["changed"]


def test_remove_storage_keeps_backing_files(conn):
    pool = conn.storagePoolLookupByName("default-pool")
    for vol in ("vft-dom-r.img", "vft-dom-shared.img"):
        pool.createXML("<volume><name>%s</name><capacity>1048576</capacity></volume>" % vol, 0)
    path = pool.storageVolLookupByName("vft-dom-r.img").path()
    shared = pool.storageVolLookupByName("vft-dom-shared.img").path()
    ok(dict(name="vft-dom-r", memory=64, disks=[dict(path=path), dict(path=shared)]))
    ok(dict(name="vft-dom-r2", memory=64, disks=[dict(path=shared)]))
    res = ok(dict(name="vft-dom-r", state="absent", remove_storage=True), check=True)
    assert res["removed_storage"] == [path] and [k["path"] for k in res["kept_storage"]] == [shared]
    assert "vft-dom-r.img" in pool.listVolumes()
    res = ok(dict(name="vft-dom-r", state="absent", remove_storage=True))
    assert res["removed_storage"] == [path] and "also used by domain vft-dom-r2" in res["kept_storage"][0]["reason"]
    assert "vft-dom-r.img" not in pool.listVolumes() and "vft-dom-shared.img" in pool.listVolumes()


def test_wait_timeout_fails_naming_the_option(conn):
    res = fail(dict(name="vft-dom-w", memory=64, state="running", wait_for=["agent"], wait_timeout=0))
    assert res["msg"].startswith("wait_timeout: domain vft-dom-w: no agent within 0 s"), res["msg"]
    assert res["domain"]["state"] == "running" and res["timing"]["wait"] >= 0
    # a batch names the item
    res = fail(dict(state="running", wait_for=["ip"], wait_timeout=0, domains=[dict(name="vft-dom-w")]))
    assert "domains[0].wait_timeout" in res["msg"]


def test_batch_of_bare_names_takes_the_top_level_options(conn):
    ok(dict(memory=128, domains=["vft-dom-n1", dict(name="vft-dom-n2")]))
    res = ok(dict(memory=256, cputune=dict(shares=512), domains=["vft-dom-n1", "vft-dom-n2"]))
    assert [d["name"] for d in res["domains"]] == ["vft-dom-n1", "vft-dom-n2"] and res["changed"]
    for name in ("vft-dom-n1", "vft-dom-n2"):
        xml = conn.lookupByName(name).XMLDesc(2)
        assert "<shares>512</shares>" in xml and "<currentMemory unit='KiB'>262144</currentMemory>" in xml
    assert not ok(dict(memory=256, cputune=dict(shares=512), domains=["vft-dom-n1", "vft-dom-n2"]))["changed"]
    res = fail(dict(domains=["vft-dom-n1", 5]))
    assert res["msg"].startswith("domains[1]:") and "domain name" in res["msg"]
    res = fail(dict(domains=[""]))
    assert res["msg"].startswith("domains[0]:")


def test_ip_addresses_have_domain_infos_shape():
    from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.manager import DomainManager

    class Dom(object):
        def interfaceAddresses(self, source, flags):
            if source == 0:  # lease: none yet
                return {}
            return {"lo": {"hwaddr": "00:00:00:00:00:00", "addrs": [{"addr": "127.0.0.1", "prefix": 8}]},
                    "eth0": {"hwaddr": "52:54:00:AA:00:01", "addrs": [
                        {"addr": "10.251.0.9", "prefix": 24}, {"addr": "fe80::1", "prefix": 64},
                        {"addr": "fd00::9", "prefix": 64}]}}

    assert DomainManager.addresses(Dom()) == [
        dict(address="10.251.0.9", prefix=24, family="ipv4", mac="52:54:00:aa:00:01", interface="eth0",
             network=None, source="agent", hostname=None),
        dict(address="fd00::9", prefix=64, family="ipv6", mac="52:54:00:aa:00:01", interface="eth0",
             network=None, source="agent", hostname=None)]
