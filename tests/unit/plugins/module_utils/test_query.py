"""The bulk domain query against libvirt's test:///default driver, and the proof that the number
of libvirt calls does not grow with the number of domains (a counting wrapper around the connection)."""

import collections

import libvirt
import pytest
from lxml import etree

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt, _query
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

PREFIX = "vft-info-unit-"
NS = _libvirt.METADATA_NS


def domain_xml(name, tags=(), memory_mib=128, vcpus=1, mac=None, agent=False, disk=None):
    """Build a test-driver domain with lxml, tags in the collection's metadata element."""
    root = etree.Element("domain", type="test")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "memory", unit="MiB").text = str(memory_mib)
    etree.SubElement(root, "currentMemory", unit="MiB").text = str(memory_mib // 2)
    etree.SubElement(root, "vcpu").text = str(vcpus)
    os_el = etree.SubElement(root, "os")
    etree.SubElement(os_el, "type").text = "hvm"
    if tags:
        meta = etree.SubElement(root, "metadata")
        inst = etree.SubElement(meta, "{%s}instance" % NS, nsmap={"vf": NS})
        for tag in tags:
            etree.SubElement(inst, "{%s}tag" % NS).text = tag
    devices = etree.SubElement(root, "devices")
    if disk:
        d = etree.SubElement(devices, "disk", type="file", device="disk")
        etree.SubElement(d, "driver", name="qemu", type="qcow2")
        etree.SubElement(d, "source", file=disk)
        etree.SubElement(d, "target", dev="vdb", bus="virtio")
    if mac:
        nic = etree.SubElement(devices, "interface", type="network")
        etree.SubElement(nic, "mac", address=mac)
        etree.SubElement(nic, "source", network="default")
        etree.SubElement(nic, "model", type="virtio")
    if agent:
        chan = etree.SubElement(devices, "channel", type="unix")
        etree.SubElement(chan, "target", type="virtio", name=_query.AGENT_CHANNEL)
    return etree.tostring(root, encoding="unicode")


@pytest.fixture
def conn():
    """test:///default is shared by every connection of the process: remove what we define."""
    connection = _libvirt.connect("test:///default")
    yield connection
    cleanup(connection)
    connection.close()


def cleanup(connection):
    for dom in connection.listAllDomains(0):
        if dom.name().startswith(PREFIX):
            persistent = dom.isPersistent()
            if dom.isActive():
                dom.destroy()
            if persistent:
                dom.undefine()


def define(conn, count, start=(), **kwargs):
    doms = []
    for index in range(count):
        name = "%s%02d" % (PREFIX, index)
        mac = "52:54:00:00:10:%02x" % index
        dom = conn.defineXML(domain_xml(name, mac=mac, **kwargs))
        if index in start:
            dom.create()
        doms.append(dom)
    return doms


# -- a counting wrapper around a libvirt connection -------------------------------------------
LOCAL = {"name", "UUIDString", "UUID", "ID"}  # read from the object, no round trip to libvirtd


class Counting(object):
    """Wraps a virConnect / virDomain / virNetwork; every method call is one libvirt RPC except
    the LOCAL accessors. Objects returned are wrapped too, objects passed in are unwrapped."""

    def __init__(self, obj, calls, kind, fakes=None):
        self._obj = obj
        self._calls = calls
        self._kind = kind
        self._fakes = fakes or {}

    def __getattr__(self, attr):
        value = getattr(self._obj, attr)
        if attr in LOCAL or not callable(value):
            return value
        fake = self._fakes.get((self._kind, attr))

        def call(*args, **kwargs):
            self._calls["%s.%s" % (self._kind, attr)] += 1
            if fake is not None:
                return fake(self._obj, *args, **kwargs)
            return self._wrap(value(*[_unwrap(a) for a in args], **kwargs))
        return call

    def _wrap(self, value):
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._wrap(v) for v in value)
        if isinstance(value, libvirt.virDomain):
            return Counting(value, self._calls, "domain", self._fakes)
        if isinstance(value, libvirt.virNetwork):
            return Counting(value, self._calls, "network", self._fakes)
        return value


def _unwrap(value):
    if isinstance(value, Counting):
        return value._obj
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def fake_leases(net, flags=0):
    """The test driver has no DHCP server: answer like the QEMU network driver does, one lease
    per MAC the test domains use (the call is still counted)."""
    if net.name() != "default":
        return []
    return [dict(mac="52:54:00:00:10:%02x" % i, ipaddr="192.168.122.%d" % (10 + i), prefix=24, type=0,
                 hostname="guest%d" % i, iface="virbr0") for i in range(40)]


def counted_query(conn, **kwargs):
    calls = collections.Counter()
    wrapped = Counting(conn, calls, "conn", {("network", "DHCPLeases"): fake_leases})
    result = _query.query_domains(wrapped, **kwargs)
    return result, calls


def _only_mine(result):
    return [d for d in result.domains if d["name"].startswith(PREFIX)]


# -- behaviour -------------------------------------------------------------------------------
def test_default_domain_record(conn):
    result = _query.query_domains(conn, names="test", ip_sources=[])
    assert [d["name"] for d in result.domains] == ["test"]
    dom = result.domains[0]
    assert dom["state"] == "running" and dom["active"] is True and dom["id"] == 1
    assert dom["uuid"] == "6695eb01-f6a4-8304-79aa-97f2502e193f"
    assert dom["max_memory"] == 8192 and dom["max_memory_bytes"] == 8 * 1024 ** 3
    assert dom["memory"] == 2048 and dom["memory_bytes"] == 2 * 1024 ** 3
    assert dom["vcpus"] == 2 and dom["max_vcpus"] == 2
    assert dom["persistent"] is True and dom["autostart"] is False
    assert dom["tags"] == []
    assert dom["disks"][0]["dev"] == "vda" and dom["disks"][0]["path"] == "/guest/diskimage1"
    assert dom["disks"][0]["bus"] == "virtio" and dom["disks"][0]["type"] == "file"
    assert dom["interfaces"][0] == dict(mac="aa:bb:cc:dd:ee:ff", model=None, type="network", network="default",
                                        bridge=None, direct=None, target="testnet0", io_class="emulated")


def test_names_globs_and_missing(conn):
    define(conn, 3)
    result = _query.query_domains(conn, names=[PREFIX + "0*", "nope", PREFIX + "02", "zz*"], ip_sources=[])
    assert [d["name"] for d in result.domains] == [PREFIX + "00", PREFIX + "01", PREFIX + "02"]
    assert result.missing == ["nope", "zz*"]
    result = _query.query_domains(conn, names="absent-domain")
    assert result.domains == [] and result.missing == ["absent-domain"]


def test_state_filter_and_inactive_resources_from_xml(conn):
    define(conn, 3, start=(1,), disk="/var/tmp/x.qcow2")
    stopped = _only_mine(_query.query_domains(conn, states=["stopped"], ip_sources=[]))
    assert [d["name"] for d in stopped] == [PREFIX + "00", PREFIX + "02"]
    assert all(d["state"] == "stopped" and d["id"] is None and d["active"] is False for d in stopped)
    assert stopped[0]["max_memory"] == 128 and stopped[0]["memory"] == 64 and stopped[0]["vcpus"] == 1
    assert stopped[0]["disks"][0]["format"] == "qcow2"
    running = _only_mine(_query.query_domains(conn, states="running", ip_sources=[]))
    assert [d["name"] for d in running] == [PREFIX + "01"]


def test_tags_filter_needs_all_tags_with_and_without_details(conn):
    conn.defineXML(domain_xml(PREFIX + "a", tags=["web", "prod"]))
    conn.defineXML(domain_xml(PREFIX + "b", tags=["web"]))
    conn.defineXML(domain_xml(PREFIX + "c"))
    for details in (True, False):
        web = _query.query_domains(conn, tags=["web"], details=details, ip_sources=[])
        assert [d["name"] for d in web.domains] == [PREFIX + "a", PREFIX + "b"], details
        both = _query.query_domains(conn, tags=["web", "prod"], details=details, ip_sources=[])
        assert [d["name"] for d in both.domains] == [PREFIX + "a"]
        assert both.domains[0]["tags"] == ["prod", "web"]
    untagged = _query.query_domains(conn, names=PREFIX + "c", ip_sources=[])
    assert untagged.domains[0]["tags"] == []


def test_without_details_no_tags_or_device_detail(conn):
    define(conn, 1)
    dom = _query.query_domains(conn, names=PREFIX + "00", details=False, ip_sources=[]).domains[0]
    assert dom["tags"] is None and dom["interfaces"] == [] and dom["state"] == "stopped"


def test_without_details_disks_and_nics_come_from_the_bulk_statistics(conn):
    define(conn, 1, start=(0,))

    def qemu_like_stats(_conn, domains, groups, flags=0):
        """What the QEMU driver answers (the test driver only reports the state)."""
        return [(dom, {"state.state": 1, "balloon.current": 262144, "balloon.maximum": 524288,
                       "vcpu.current": 1, "vcpu.maximum": 2, "block.count": 1, "block.0.name": "vda",
                       "block.0.path": "/images/x.qcow2", "net.count": 1, "net.0.name": "vnet7"})
                for dom in _unwrap(domains)]

    calls = collections.Counter()
    wrapped = Counting(conn, calls, "conn", {("conn", "domainListGetStats"): qemu_like_stats})
    dom = _query.query_domains(wrapped, names=PREFIX + "00", details=False, ip_sources=[]).domains[0]
    assert (dom["memory"], dom["max_memory"], dom["vcpus"], dom["max_vcpus"]) == (256, 512, 1, 2)
    assert dom["disks"] == [dict(dev="vda", path="/images/x.qcow2", pool=None, volume=None, format=None, bus=None,
                                 device=None, type=None, readonly=None)]
    assert [n["target"] for n in dom["interfaces"]] == ["vnet7"] and dom["interfaces"][0]["mac"] is None
    assert calls["conn.domainListGetStats"] == 1 and "domain.XMLDesc" not in calls


def test_ip_sources_in_order_and_agent_only_with_channel(conn):
    define(conn, 2, start=(0, 1))
    conn.lookupByName(PREFIX + "01").undefine()  # transient now
    result, calls = counted_query(conn, names=PREFIX + "*", ip_sources=["lease", "agent"])
    first, second = result.domains
    assert first["ip_addresses"][0] == dict(address="192.168.122.10", prefix=24, family="ipv4",
                                            mac="52:54:00:00:10:00", interface=first["interfaces"][0]["target"],
                                            network="default",
                                            source="lease", hostname="guest0")
    assert second["persistent"] is False
    # no guest agent channel in these domains: the agent is not asked
    assert calls["domain.interfaceAddresses"] == 0


def test_newest_lease_of_a_mac_comes_first(conn):
    define(conn, 1, start=(0,))

    def two_leases(net, flags=0):
        if net.name() != "default":
            return []
        return [dict(mac="52:54:00:00:10:00", ipaddr="192.168.122.50", prefix=24, expirytime=1000),
                dict(mac="52:54:00:00:10:00", ipaddr="192.168.122.51", prefix=24, expirytime=5000)]

    wrapped = Counting(conn, collections.Counter(), "conn", {("network", "DHCPLeases"): two_leases})
    dom = _query.query_domains(wrapped, names=PREFIX + "00").domains[0]
    assert [a["address"] for a in dom["ip_addresses"]] == ["192.168.122.51", "192.168.122.50"]
    assert _query.first_ip(dom) == "192.168.122.51"


def test_agent_source_asks_running_domains_with_a_channel(conn):
    define(conn, 2, start=(0,), agent=True)
    result, calls = counted_query(conn, names=PREFIX + "*", ip_sources=["agent"])
    assert calls["domain.interfaceAddresses"] == 1  # the stopped one is not asked
    addrs = result.domains[0]["ip_addresses"]
    assert addrs and all(a["source"] == "agent" for a in addrs)
    assert result.domains[1]["ip_addresses"] == []


def test_lease_falls_back_per_domain_when_the_driver_lists_no_leases(conn):
    # the real test driver does not implement virNetworkGetDHCPLeases
    result = _query.query_domains(conn, names="test", ip_sources=["lease"])
    assert [a["source"] for a in result.domains[0]["ip_addresses"]] == ["lease"]


def test_bad_input_names_the_option(conn):
    with pytest.raises(VirtforgeError, match=r"state\[1\]"):
        _query.query_domains(conn, states=["running", "asleep"])
    with pytest.raises(VirtforgeError, match=r"ip_sources\[0\]"):
        _query.query_domains(conn, ip_sources=["dns"])


def test_vanished_domain_is_dropped(conn):
    define(conn, 2)

    def gone(dom, flags=0):
        if dom.name().endswith("00"):
            raise libvirt.libvirtError("gone")  # error code of the last libvirt error; set below
        return dom.XMLDesc(flags)

    calls = collections.Counter()
    wrapped = Counting(conn, calls, "conn", {("domain", "XMLDesc"): gone})
    original = libvirt.libvirtError.get_error_code
    libvirt.libvirtError.get_error_code = lambda self: libvirt.VIR_ERR_NO_DOMAIN
    try:
        result = _query.query_domains(wrapped, names=PREFIX + "*", ip_sources=[])
    finally:
        libvirt.libvirtError.get_error_code = original
    assert [d["name"] for d in result.domains] == [PREFIX + "01"]


def test_first_ip_preferences():
    record = dict(ip_addresses=[
        dict(address="fd00::5", family="ipv6", source="agent", network="a"),
        dict(address="10.0.0.5", family="ipv4", source="agent", network="b"),
        dict(address="10.1.0.5", family="ipv4", source="lease", network="a"),
    ])
    assert _query.first_ip(record) == "10.0.0.5"
    assert _query.first_ip(record, family="any") == "fd00::5"
    assert _query.first_ip(record, sources=["lease", "agent"]) == "10.1.0.5"
    assert _query.first_ip(record, network="a") == "10.1.0.5"
    assert _query.first_ip(record, network="c") is None
    assert _query.first_ip(dict(ip_addresses=[])) is None


# -- the RPC count proof ---------------------------------------------------------------------
def _run_with(conn, count, **kwargs):
    define(conn, count, start=range(0, count, 2), tags=["t"])
    result, calls = counted_query(conn, **kwargs)
    assert len(_only_mine(result)) == count
    cleanup(conn)
    return result, calls


def test_bulk_calls_do_not_grow_with_the_domain_count(conn):
    _r1, one = _run_with(conn, 1, details=False, ip_sources=[])
    _r20, twenty = _run_with(conn, 20, details=False, ip_sources=[])
    assert one == twenty, (one, twenty)
    assert sum(one.values()) == 4, one
    assert one == collections.Counter({"conn.listAllDomains": 3, "conn.domainListGetStats": 1})


def test_details_and_leases_cost_one_xml_per_domain_and_one_call_per_network(conn):
    active_networks = len(conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE))
    r1, one = _run_with(conn, 1, details=True, ip_sources=["lease"])
    r20, twenty = _run_with(conn, 20, details=True, ip_sources=["lease"])
    # XMLDesc once per listed domain (the test driver's own domain `test` is listed too)
    assert one["domain.XMLDesc"] == len(r1.domains) and twenty["domain.XMLDesc"] == len(r20.domains)
    assert twenty["domain.XMLDesc"] - one["domain.XMLDesc"] == 19
    # leases: one call per active network, whatever the number of domains
    assert one["network.DHCPLeases"] == twenty["network.DHCPLeases"] == active_networks
    assert one["conn.listAllNetworks"] == twenty["conn.listAllNetworks"] == 1
    for counter in (one, twenty):
        del counter["domain.XMLDesc"]
    assert one == twenty
    assert "domain.interfaceAddresses" not in twenty
    # and the leases were matched to the running domains by MAC
    running = [d for d in _only_mine(r20) if d["active"]]
    assert len(running) == 10 and all(d["ip_addresses"][0]["source"] == "lease" for d in running)
    assert all(d["ip_addresses"] == [] for d in _only_mine(r20) if not d["active"])


CLASSIFY_XML = """<domain type='kvm'><name>vft-dev-pt</name><devices>
<controller type='scsi' index='0' model='virtio-scsi'/>
<disk type='file' device='disk'><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><source file='/i/b.raw'/><target dev='sda' bus='scsi'/></disk>
<disk type='file' device='disk'><source file='/i/c.raw'/><target dev='hda' bus='ide'/></disk>
<disk type='block' device='lun' sgio='unfiltered'><source dev='/dev/sdx'/><target dev='sdb' bus='scsi'/></disk>
<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/>
  <model type='virtio'/></interface>
<interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/><model type='e1000e'/></interface>
<interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:03'/>
  <source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source></interface>
<hostdev mode='subsystem' type='pci' managed='yes'>
  <source><address domain='0x0000' bus='0x04' slot='0x00' function='0x0'/></source></hostdev>
<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>
</devices></domain>"""


def _classified(xml):
    record = dict(disks=[], interfaces=[])
    record.update(memory_bytes=None, max_memory_bytes=None, vcpus=None, max_vcpus=None)
    _query._merge_xml(record, etree.fromstring(xml))
    return record


def test_devices_classified_and_pass_through_blocks_migration():
    rec = _classified(CLASSIFY_XML)
    assert [(d["dev"], d["io_class"]) for d in rec["disks"]] == [
        ("vda", "paravirtual"), ("sda", "paravirtual"), ("hda", "emulated"), ("sdb", "pass-through")]
    assert [n["io_class"] for n in rec["interfaces"]] == ["paravirtual", "emulated", "pass-through"]
    assert rec["hostdevs"] == [dict(type="pci", source="0000:04:00.0", io_class="pass-through"),
                               dict(type="usb", source="0x046d:0xc52b", io_class="pass-through")]
    assert rec["migratable"] is False
    assert rec["migration_blockers"] == [
        "disk sdb is a SCSI LUN passed through (/dev/sdx)",
        "interface 52:54:00:00:00:03 is a PCI device (SR-IOV VF) passed through",
        "hostdev pci 0000:04:00.0 is passed through",
        "hostdev usb 0x046d:0xc52b is passed through"]


def test_paravirtual_only_domain_is_migratable():
    rec = _classified("<domain><name>x</name><devices><disk type='file' device='disk'><source file='/a'/>"
                      "<target dev='vda' bus='virtio'/></disk></devices></domain>")
    assert rec["migratable"] is True and rec["migration_blockers"] == [] and rec["hostdevs"] == []


def test_mediated_device_named_by_its_uuid():
    rec = _classified("<domain><name>x</name><devices><hostdev mode='subsystem' type='mdev' model='vfio-pci'>"
                      "<source><address uuid='4b20d080-1b54-4048-85b3-a6a62d165c01'/></source></hostdev>"
                      "</devices></domain>")
    assert rec["hostdevs"] == [dict(type="mdev", source="4b20d080-1b54-4048-85b3-a6a62d165c01",
                                    io_class="pass-through")]
    assert rec["migration_blockers"] == ["hostdev mdev 4b20d080-1b54-4048-85b3-a6a62d165c01 is passed through"]
