"""Pool and network specs: XML round trips with golden files, plan rules, and the lifecycle
(define, redefine, restart only when allowed, live DHCP updates) against test:///default."""

import os

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _network as netmod
from ansible_collections.virtforge.libvirt.plugins.module_utils import _pool as poolmod
from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import parse_xml, to_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import connect

GOLDEN = os.path.join(os.path.dirname(__file__), "golden_storage")
REGEN = os.environ.get("VF_REGEN_GOLDEN") == "1"


def params_for(argspec, **given):
    """Module params as AnsibleModule would give them: every option present, defaults applied."""
    out = {}
    for key, spec in argspec.items():
        out[key] = spec.get("default")
    out.update(given)
    return out


def pool_params(**given):
    return params_for(poolmod.POOL_ARGSPEC, **given)


def net_params(**given):
    return params_for(netmod.NETWORK_ARGSPEC, **given)


def golden(name, text):
    path = os.path.join(GOLDEN, name)
    if REGEN:
        with open(path, "w") as handle:
            handle.write(text)
    with open(path) as handle:
        assert text == handle.read(), "%s differs from the golden file" % name


POOLS = {
    "pool_dir.xml": dict(type="dir", target="/srv/images/", permissions=dict(mode="711", owner="107", group="107")),
    "pool_fs.xml": dict(type="fs", target="/srv/fs", source=dict(devices=["/dev/vdb1"], format="ext4")),
    "pool_netfs.xml": dict(type="netfs", target="/srv/nfs",
                           source=dict(host="nfs.example.com", dir="/export/images", format="nfs")),
    "pool_logical.xml": dict(type="logical", source=dict(name="vg_guests", devices=["/dev/vdc", "/dev/vdd"],
                                                         format="lvm2")),
    "pool_disk.xml": dict(type="disk", source=dict(devices=["/dev/vde"], format="gpt")),
    "pool_iscsi.xml": dict(type="iscsi", source=dict(host="san.example.com", port=3260,
                                                     devices=["iqn.2026-01.com.example:guests"],
                                                     initiator="iqn.2026-01.com.example:host1")),
}


@pytest.mark.parametrize("fname", sorted(POOLS))
def test_pool_xml_round_trip(fname):
    spec = poolmod.PoolSpec()
    params = pool_params(name="p1", **POOLS[fname])
    spec.validate(params, exists=False)
    ctx = dict(params=params, running=False)
    plan = spec.plan("p1", params, None, ctx)
    assert plan.action == "create"
    golden(fname, plan.after_xml)
    again = spec.plan("p1", params, plan.after_xml, dict(params=params, running=False))
    assert again.changes == [] and not again.changed


def test_pool_only_compares_what_the_user_set():
    spec = poolmod.PoolSpec()
    live = ("<pool type='dir'><name>p1</name><uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid><source/>"
            "<target><path>/srv/images</path><permissions><mode>0755</mode><owner>0</owner><group>0</group>"
            "</permissions></target></pool>")
    params = pool_params(name="p1", target="/srv/images")
    plan = spec.plan("p1", params, live, dict(params=params, running=True))
    assert plan.changes == []
    params = pool_params(name="p1", target="/srv/other", permissions=dict(mode="0755"))
    plan = spec.plan("p1", params, live, dict(params=params, running=True))
    assert [(c.path, c.before, c.after, c.live) for c in plan.changes] == [
        ("target.path", "/srv/images", "/srv/other", False)]
    after = parse_xml(plan.after_xml)
    assert after.findtext("uuid") == "c7a5fdbd-cdaf-9455-926a-d65c16db1809"
    assert after.findtext("target/permissions/owner") == "0"


@pytest.mark.parametrize("given,option", [
    (dict(name="a/b", target="/x"), "name"),
    (dict(name="p", target="/x", permissions=dict(mode="rwx")), "permissions.mode"),
    (dict(name="p", target="/x", permissions=dict(owner="qemu")), "permissions.owner"),
    (dict(name="p", type="netfs", target="/x", source=dict(dir="/e")), "source.host"),
    (dict(name="p", type="fs", target="/x"), "source.devices"),
    (dict(name="p", type="logical"), "source.name"),
    (dict(name="p", type="dir"), "target"),
])
def test_pool_bad_input(given, option):
    spec = poolmod.PoolSpec()
    params = pool_params(**given)
    with pytest.raises(VirtforgeError) as err:
        spec.validate(params, exists=False)
        spec.plan(params["name"], params, None, dict(params=params, running=False))
    assert err.value.option == option


NETWORKS = {
    "net_nat.xml": dict(forward="nat", bridge="vfnat0", stp=False, delay=0, mtu=1450, domain_name="lab.test",
                        ip=dict(address="10.252.1.1", prefix=24,
                                dhcp_ranges=[dict(start="10.252.1.100", end="10.252.1.200")],
                                dhcp_hosts=[dict(mac="52:54:00:AA:BB:01", name="web1", ip="10.252.1.11")])),
    "net_isolated.xml": dict(forward="none", bridge="vfiso0", ip=dict(address="10.252.2.1", netmask="255.255.255.0")),
    "net_route_v6.xml": dict(forward="route", ip=dict(address="fd00:252::1", prefix=64,
                                                      dhcp_ranges=[dict(start="fd00:252::100", end="fd00:252::1ff")])),
    "net_bridge.xml": dict(forward="bridge", bridge="br0"),
    "net_vf_pool.xml": dict(forward="hostdev", pf="enp3s0f0"),
}


@pytest.mark.parametrize("fname", sorted(NETWORKS))
def test_network_xml_round_trip(fname):
    spec = netmod.NetworkSpec()
    params = net_params(name="n1", **NETWORKS[fname])
    spec.validate(params, exists=False)
    plan = spec.plan("n1", params, None, dict(params=params, running=False))
    golden(fname, plan.after_xml)
    again = spec.plan("n1", params, plan.after_xml, dict(params=params, running=False))
    assert again.changes == []


def test_network_reads_netmask_and_libvirt_defaults():
    xml = ("<network><name>n1</name><forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>"
           "<bridge name='virbr0' stp='on' delay='0'/><ip address='192.168.122.1' netmask='255.255.255.0'>"
           "<dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>")
    spec = netmod.NetworkSpec()
    params = net_params(name="n1", forward="nat", stp=True, ip=dict(address="192.168.122.1", prefix=24))
    assert spec.plan("n1", params, xml, dict(params=params, running=True)).changes == []


def test_network_dhcp_changes_are_live_readdressing_is_not():
    base = net_params(name="n1", ip=dict(address="10.252.1.1", prefix=24,
                                         dhcp_ranges=[dict(start="10.252.1.10", end="10.252.1.20")],
                                         dhcp_hosts=[dict(mac="52:54:00:00:00:01", ip="10.252.1.5")]))
    spec = netmod.NetworkSpec()
    xml = spec.plan("n1", base, None, dict(params=base, running=False)).after_xml
    changed = net_params(name="n1", ip=dict(address="10.252.1.1", prefix=24,
                                            dhcp_ranges=[dict(start="10.252.1.10", end="10.252.1.30")]))
    plan = spec.plan("n1", changed, xml, dict(params=changed, running=True))
    assert [(c.path, c.live) for c in plan.changes] == [("ip.dhcp_ranges", True)]
    moved = net_params(name="n1", ip=dict(address="10.252.9.1", prefix=24,
                                          dhcp_ranges=[dict(start="10.252.9.10", end="10.252.9.30")]))
    plan = spec.plan("n1", moved, xml, dict(params=moved, running=True))
    assert {c.path: c.live for c in plan.changes} == {"ip.address": False, "ip.dhcp_ranges": False}
    assert plan.restart_required


def test_network_dhcp_hosts_are_kept_unless_purged():
    current = [dict(mac="52:54:00:00:00:01", ip="10.0.0.5"), dict(mac="52:54:00:00:00:02", ip="10.0.0.6")]
    want = dict(dhcp_hosts=[dict(mac="52:54:00:00:00:02", ip="10.0.0.7"),
                            dict(mac="52:54:00:00:00:03", ip="10.0.0.8")])
    merged = netmod.IpGroup.effective_hosts(dict(want, purge_hosts=False), current)
    assert [h["ip"] for h in merged] == ["10.0.0.5", "10.0.0.7", "10.0.0.8"]
    purged = netmod.IpGroup.effective_hosts(dict(want, purge_hosts=True), current)
    assert [h["ip"] for h in purged] == ["10.0.0.7", "10.0.0.8"]


@pytest.mark.parametrize("given,option", [
    (dict(bridge="vfsto-much-too-long"), "bridge"),
    (dict(bridge="br 0"), "bridge"),
    (dict(ip=dict(address="10.0.0.300", prefix=24)), "ip.address"),
    (dict(ip=dict(address="10.0.0.1")), "ip.prefix"),
    (dict(ip=dict(address="10.0.0.1", netmask="255.0.255.0")), "ip.netmask"),
    (dict(ip=dict(address="10.0.0.0", prefix=24)), "ip.address"),
    (dict(ip=dict(address="10.0.0.1", prefix=24, dhcp_ranges=[dict(start="10.0.1.1", end="10.0.1.9")])),
     "ip.dhcp_ranges[0].start"),
    (dict(ip=dict(address="10.0.0.1", prefix=24, dhcp_ranges=[dict(start="10.0.0.9", end="10.0.0.2")])),
     "ip.dhcp_ranges[0]"),
    (dict(ip=dict(address="10.0.0.1", prefix=24, dhcp_ranges=[dict(start="10.0.0.1", end="10.0.0.9")])),
     "ip.dhcp_ranges[0]"),
    (dict(ip=dict(address="10.0.0.1", prefix=24, dhcp_hosts=[dict(mac="zz", ip="10.0.0.5")])),
     "ip.dhcp_hosts[0].mac"),
    (dict(ip=dict(address="10.0.0.1", prefix=24, dhcp_hosts=[dict(ip="10.0.0.5")])), "ip.dhcp_hosts[0]"),
    (dict(mtu=20), "mtu"),
    (dict(domain_name="bad domain"), "domain_name"),
    (dict(forward="bridge"), "bridge"),
    (dict(forward="bridge", bridge="br0", ip=dict(address="10.0.0.1", prefix=24)), "ip"),
    (dict(name="n<1>"), "name"),
    (dict(forward="hostdev"), "pf"),
    (dict(forward="nat", pf="enp3s0f0"), "pf"),
    (dict(forward="hostdev", pf="enp3s0f0", ip=dict(address="10.0.0.1", prefix=24)), "ip"),
    (dict(forward="hostdev", pf="enp3s0f0 x"), "pf"),
])
def test_network_bad_input(given, option):
    spec = netmod.NetworkSpec()
    params = net_params(**dict(dict(name="n1"), **given))
    with pytest.raises(VirtforgeError) as err:
        spec.validate(params, exists=False)
        spec.plan(params["name"], params, None, dict(params=params, running=False))
    assert err.value.option == option


# ------------------------------------------------------------------------------------- lifecycle


class FakeModule(object):
    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self._diff = True
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


@pytest.fixture
def conn():
    c = connect("test:///default")
    yield c
    for pool in c.listAllStoragePools(0):
        if pool.name().startswith("vft-sto-"):
            if pool.isActive():
                pool.destroy()
            pool.undefine()
    for net in c.listAllNetworks(0):
        if net.name().startswith("vft-sto-"):
            if net.isActive():
                net.destroy()
            net.undefine()
    c.close()


def run_pool(conn, check_mode=False, **given):
    module = FakeModule(pool_params(**given), check_mode)
    return poolmod.run_pool(module, conn), module


def test_pool_lifecycle_on_the_test_driver(conn):
    args = dict(name="vft-sto-p", type="dir", target="/vft/a", state="active", autostart=True)
    result, _m = run_pool(conn, check_mode=True, **args)
    assert result["changed"] and result["active"]
    assert "vft-sto-p" not in [p.name() for p in conn.listAllStoragePools(0)]
    result, _m = run_pool(conn, **args)
    pool = conn.storagePoolLookupByName("vft-sto-p")
    assert pool.isActive() and pool.autostart()
    assert not run_pool(conn, **args)[0]["changed"]
    # a changed definition is redefined; the active pool needs a restart
    moved = {**args, "target": "/vft/b"}
    result, module = run_pool(conn, **moved)
    assert result["changed"] and result["restart_required"] and module.warnings
    assert "/vft/a" in pool.XMLDesc(0)  # the test driver has no separate persistent XML to read back
    # (that a pending restart is still reported on the next run, with nothing to redefine, needs a
    # driver keeping persistent and live XML apart: proven by the integration target `pool`)
    result, _m = run_pool(conn, allow_restart=True, **moved)
    assert result["changed"] and not result["restart_required"]
    assert "restart" in [c["path"] for c in result["changes"]]
    result, _m = run_pool(conn, name="vft-sto-p", state="absent")
    assert result["changed"]
    assert "vft-sto-p" not in [p.name() for p in conn.listAllStoragePools(0)]
    assert not run_pool(conn, name="vft-sto-p", state="absent")[0]["changed"]


def run_net(conn, check_mode=False, **given):
    module = FakeModule(net_params(**given), check_mode)
    return netmod.run_network(module, conn, runner=None), module


def test_network_lifecycle_and_live_dhcp_on_the_test_driver(conn):
    args = dict(name="vft-sto-n", forward="nat", bridge="vfston0",
                ip=dict(address="10.252.5.1", prefix=24, dhcp_ranges=[dict(start="10.252.5.10", end="10.252.5.20")]),
                state="active")
    result, _m = run_net(conn, check_mode=True, **args)
    assert result["changed"]
    assert "vft-sto-n" not in [n.name() for n in conn.listAllNetworks(0)]
    run_net(conn, **args)
    assert not run_net(conn, **args)[0]["changed"]
    host = dict(mac="52:54:00:00:05:01", name="h1", ip="10.252.5.5")
    live = {**args, "ip": {**args["ip"], "dhcp_hosts": [host]}}
    result, _m = run_net(conn, **live)
    assert result["changed"] and not result["restart_required"]
    assert result["changes"][0]["live"] is True
    net = conn.networkLookupByName("vft-sto-n")
    assert "52:54:00:00:05:01" in net.XMLDesc(0)
    assert not run_net(conn, **live)[0]["changed"]
    result, _m = run_net(conn, **{**live, "stp": False})
    assert result["restart_required"]
    result, _m = run_net(conn, allow_restart=True, **{**live, "stp": False})
    assert "restart" in [c["path"] for c in result["changes"]]
    assert result["reconnected"] == []
    result, _m = run_net(conn, name="vft-sto-n", state="absent")
    assert result["changed"] and not result["active"]


def test_network_reconnect_command(conn, monkeypatch):
    """After a restart, each running guest's tap on the network is put back on the bridge."""
    run_net(conn, name="vft-sto-r", forward="none", bridge="vfstor0", state="active")
    dom = conn.createXML(
        "<domain type='test'><name>vft-sto-g</name><memory>65536</memory><os><type>hvm</type></os>"
        "<devices><interface type='network'><source network='vft-sto-r'/><target dev='vnet7'/>"
        "<mac address='52:54:00:00:07:01'/></interface></devices></domain>", 0)
    calls = []

    class Runner(object):
        def which(self, tool):
            return "/usr/bin/%s" % tool

        def run(self, argv, what=None, **_kw):
            calls.append(argv)
            return 0, "", ""

    monkeypatch.setattr(netmod, "libvirtd_netns_pid", lambda: 4242)
    module = FakeModule(net_params(name="vft-sto-r", forward="none", stp=False, allow_restart=True,
                                   state="active", uri="qemu:///system"))
    tap = parse_xml(dom.XMLDesc(0)).find("devices/interface/target").get("dev")
    try:
        result = netmod.run_network(module, conn, Runner())
    finally:
        dom.destroy()
    assert result["reconnected"] == [dict(domain="vft-sto-g", mac="52:54:00:00:07:01", tap=tap,
                                          bridge="vfstor0")]
    assert calls == [["/usr/bin/nsenter", "--net=/proc/4242/ns/net", "/usr/bin/ip", "link", "set", "dev", tap,
                      "master", "vfstor0"]]


def test_to_xml_is_stable():
    assert to_xml(parse_xml("<a><b/></a>")) == "<a>\n  <b/>\n</a>\n"
