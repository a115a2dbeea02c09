"""Disk iotune and NIC bandwidth in the domain engine: canonical values, XML, live application."""

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.devices import IOTUNE_KEYS, stable_mac
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.spec import DomainSpec
from ansible_collections.virtforge.libvirt.plugins.module_utils._engine import parse_xml
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

from conftest import golden

SPEC = DomainSpec()
NAME = "vft-dom-golden"
DISK = "/var/lib/virtforge-lab/pool/vft-dom-g.qcow2"


def plan(params, make_ctx, xml=None, running=False):
    params = dict(params, name=NAME)
    return SPEC.plan(NAME, params, xml if xml is not None else golden("libvirt_filled.xml"),
                     make_ctx(NAME, running=running))


class FakeDomain(object):
    def __init__(self):
        self.calls = []

    def setBlockIoTune(self, dev, params, flags):
        self.calls.append(("iotune", dev, params, flags))

    def setInterfaceParameters(self, dev, params, flags):
        self.calls.append(("bandwidth", dev, params, flags))

    def updateDeviceFlags(self, xml, flags):  # pragma: no cover - must not be used for QoS
        raise AssertionError("QoS must not go through updateDevice")


def test_iotune_written_read_back_and_applied_live(make_ctx):
    params = dict(disks=[dict(path=DISK, iotune=dict(write_bytes_sec=524288, total_iops_sec=400,
                                                     total_iops_sec_max=800))])
    p = plan(params, make_ctx, running=True)
    assert [(c.path, c.action, c.live) for c in p.changes] == [("disks[vda]", "update", True)]
    root = parse_xml(p.after_xml)
    tune = root.find("devices/disk/iotune")
    expected = [("write_bytes_sec", "524288"), ("total_iops_sec", "400"), ("total_iops_sec_max", "800")]
    assert [(n.tag, n.text) for n in tune] == expected
    # the same limits on the new XML: nothing to do
    assert not plan(params, make_ctx, xml=p.after_xml).changes
    dom = FakeDomain()
    ctx = make_ctx(NAME, running=True)
    SPEC.apply_live(dom, p, ctx)
    kind, dev, values, flags = dom.calls[0]
    assert (kind, dev, flags) == ("iotune", "vda", 1)
    assert set(values) == set(IOTUNE_KEYS)  # unset keys are 0: the limits given replace all earlier ones
    assert values["write_bytes_sec"] == 524288 and values["read_bytes_sec"] == 0
    # {} removes every limit
    p2 = plan(dict(disks=[dict(path=DISK, iotune={})]), make_ctx, xml=p.after_xml)
    assert parse_xml(p2.after_xml).find("devices/disk/iotune") is None


def test_bandwidth_written_read_back_and_applied_live(make_ctx):
    params = dict(interfaces=[dict(network="vflab-net", bandwidth=dict(
        inbound=dict(average=1000, peak=2000, burst=1024), outbound=dict(average=500)))])
    p = plan(params, make_ctx, running=True)
    mac = stable_mac(NAME, 0)
    assert [(c.path, c.action, c.live) for c in p.changes] == [("interfaces[%s]" % mac, "update", True)]
    node = parse_xml(p.after_xml).find("devices/interface/bandwidth")
    assert dict(node.find("inbound").attrib) == dict(average="1000", peak="2000", burst="1024")
    assert dict(node.find("outbound").attrib) == dict(average="500")
    assert not plan(params, make_ctx, xml=p.after_xml).changes
    dom = FakeDomain()
    SPEC.apply_live(dom, p, make_ctx(NAME, running=True))
    assert dom.calls == [("bandwidth", mac, {
        "inbound.average": 1000, "inbound.peak": 2000, "inbound.burst": 1024,
        "outbound.average": 500, "outbound.peak": 0, "outbound.burst": 0}, 1)]


@pytest.mark.parametrize("item, option, text", [
    (dict(disks=[dict(path=DISK, iotune=dict(write_bytes_sec=-1))]), "disks[0].iotune.write_bytes_sec",
     "greater than 0"),
    (dict(disks=[dict(path=DISK, iotune=dict(read_iops_sec=0))]), "disks[0].iotune.read_iops_sec", "greater than 0"),
    (dict(disks=[dict(path=DISK, iotune=dict(total_bytes_sec=10, read_bytes_sec=5))]),
     "disks[0].iotune.read_bytes_sec", "cannot both be set"),
    (dict(disks=[dict(path=DISK, iotune=dict(write_iops_sec_max=10))]), "disks[0].iotune.write_iops_sec_max", "needs"),
    (dict(disks=[dict(path=DISK, iotune=dict(write_iops_sec=20, write_iops_sec_max=10))]),
     "disks[0].iotune.write_iops_sec_max", "below"),
    (dict(interfaces=[dict(network="vflab-net", bandwidth=dict(inbound=dict(average=-5)))]),
     "interfaces[0].bandwidth.inbound.average", "greater than 0"),
    (dict(interfaces=[dict(network="vflab-net", bandwidth=dict(outbound=dict(average=0)))]),
     "interfaces[0].bandwidth.outbound.average", "greater than 0"),
    (dict(interfaces=[dict(network="vflab-net", bandwidth=dict(outbound=dict(peak=100)))]),
     "interfaces[0].bandwidth.outbound.average", "need average"),
    (dict(interfaces=[dict(network="vflab-net", bandwidth=dict(inbound=dict(average=100, peak=50)))]),
     "interfaces[0].bandwidth.inbound.peak", "below average"),
    (dict(interfaces=[dict(bridge="br0", bandwidth=dict(inbound=dict(floor=100)))]),
     "interfaces[0].bandwidth.inbound.floor", "libvirt network"),
])
def test_bad_qos_names_the_option(item, option, text, make_ctx):
    with pytest.raises(VirtforgeError) as info:
        plan(item, make_ctx)
    assert info.value.option == option
    assert text in info.value.msg
