"""Validation and the canonical model: every bad input fails naming its option, before any system access."""

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet import model
from hostnet_fakes import params

BAD = [
    # (kind, provider, params, option, words in the message)
    ("bridge", "iproute2", dict(name="br-this-is-too-long"), "name", "at most 15"),
    ("bridge", "iproute2", dict(name="br/0"), "name", "'/'"),
    ("bridge", "iproute2", dict(name="br 0"), "name", "' '"),
    ("bridge", "iproute2", dict(name=".."), "name", "not allowed"),
    ("bridge", "iproute2", dict(name="br0", stp=True, forward_delay=1), "forward_delay", "2-30"),
    ("bridge", "iproute2", dict(name="br0", stp=True, forward_delay=31), "forward_delay", "2-30"),
    ("bridge", "iproute2", dict(name="br0", stp=False, forward_delay=-1), "forward_delay", "0-30"),
    ("bridge", "iproute2", dict(name="br0", priority=65536), "priority", "0-65535"),
    ("bridge", "iproute2", dict(name="br0", mtu=67), "mtu", "68-65535"),
    ("bridge", "iproute2", dict(name="br0", ports=["eth0", "eth0"]), "ports[1]", "twice"),
    ("bridge", "iproute2", dict(name="br0", ports=["br0"]), "ports[0]", "itself"),
    ("bridge", "iproute2", dict(name="br0", ports=["a-very-long-nic-name"]), "ports[0]", "at most 15"),
    ("bridge", "iproute2", dict(name="br0", ip=dict(method="static")), "ip.addresses", "at least one"),
    ("bridge", "iproute2", dict(name="br0", ip=dict(method="static", addresses=["192.0.2.1"])),
     "ip.addresses[0]", "prefix"),
    ("bridge", "iproute2", dict(name="br0", ip=dict(method="static", addresses=["192.0.2.300/24"])),
     "ip.addresses[0]", "not an address"),
    ("bridge", "iproute2", dict(name="br0", ip=dict(method="static", addresses=["192.0.2.1/24"],
                                                    gateway="198.51.100.1")), "ip.gateway", "none of the networks"),
    ("bridge", "iproute2", dict(name="br0", ip=dict(method="static", addresses=["192.0.2.1/24"],
                                                    gateway="nope")), "ip.gateway", "not an IP"),
    ("bridge", "iproute2", dict(name="br0", ip=dict(method="dhcp", addresses=["192.0.2.1/24"])),
     "ip.addresses", "only allowed with method static"),
    ("bridge", "iproute2", dict(name="br0", ip=dict(method="dhcp")), "ip.method", "no DHCP client"),
    ("bridge", "iproute2", dict(name="br0", ip=dict(method="static", addresses=["192.0.2.1/24"], dns=["192.0.2.53"])),
     "ip.dns", "cannot set DNS"),
    ("bridge", "ifupdown", dict(name="br0", ip=dict(method="static", addresses=["192.0.2.1/24"], dns=["x"])),
     "ip.dns[0]", "not an IP"),
    ("bridge", "ifupdown", dict(name="br0", ip=dict(method="none", dns=["192.0.2.53"])), "ip.dns", "method is none"),
    ("bridge", "ifupdown", dict(name="br0", netns="lab"), "netns", "only supported by the iproute2"),
    ("bridge", "iproute2", dict(name="br0", netns="bad/ns"), "netns", "not a valid"),
    ("bridge", "iproute2", dict(name="br0", rollback_timeout=4), "rollback_timeout", "at least 5"),
    ("bridge", "iproute2", dict(name="br0", verify_port=70000), "verify_port", "out of range"),
    ("bond", "ifupdown", dict(name="bond0", mode="fastest"), "mode", "unknown bond mode"),
    ("bond", "ifupdown", dict(name="bond0", mode="7"), "mode", "unknown bond mode"),
    ("bond", "ifupdown", dict(name="bond0", miimon=-1), "miimon", "positive"),
    ("bond", "ifupdown", dict(name="bond0", arp_interval=-5), "arp_interval", "positive"),
    ("bond", "ifupdown", dict(name="bond0", mode="active-backup", miimon=100, arp_interval=100,
                              arp_ip_target=["192.0.2.1"]), "arp_interval", "exclude each other"),
    ("bond", "ifupdown", dict(name="bond0", mode="active-backup", arp_interval=100), "arp_ip_target", "at least one"),
    ("bond", "ifupdown", dict(name="bond0", mode="active-backup", arp_interval=100, arp_ip_target=["x"]),
     "arp_ip_target[0]", "not an IP"),
    ("bond", "ifupdown", dict(name="bond0", mode="802.3ad", arp_interval=100, arp_ip_target=["192.0.2.1"]),
     "arp_interval", "does not work in mode 802.3ad"),
    ("bond", "ifupdown", dict(name="bond0", mode="active-backup", lacp_rate="fast"), "lacp_rate", "802.3ad"),
    ("bond", "ifupdown", dict(name="bond0", mode="802.3ad", lacp_rate="sometimes"), "lacp_rate", "unknown LACP"),
    ("bond", "ifupdown", dict(name="bond0", mode="active-backup", xmit_hash_policy="layer3+4"),
     "xmit_hash_policy", "only applies"),
    ("bond", "ifupdown", dict(name="bond0", mode="802.3ad", xmit_hash_policy="layer5"), "xmit_hash_policy",
     "unknown transmit hash"),
    ("bond", "ifupdown", dict(name="bond0", mode="active-backup", members=["eth0"], primary="eth1"),
     "primary", "not one of the bond's members"),
    ("bond", "ifupdown", dict(name="bond0", mode="active-backup", primary="eth1"), "primary", "not one of"),
    ("bond", "ifupdown", dict(name="bond0", mode="802.3ad", members=["eth0"], primary="eth0"), "primary",
     "only applies"),
    ("bond", "ifupdown", dict(name="bond0", members=["eth0", "bond0"]), "members[1]", "itself"),
    ("vlan", "ifupdown", dict(name="vlan0", id=0, parent="eth0"), "id", "1-4094"),
    ("vlan", "ifupdown", dict(name="vlan4095", id=4095, parent="eth0"), "id", "1-4094"),
    ("vlan", "ifupdown", dict(name="vlan10", parent="eth0"), "id", "needs its id"),
    ("vlan", "ifupdown", dict(name="vlan10", id=10), "parent", "needs its parent"),
    ("vlan", "ifupdown", dict(name="vlan10", id=10, parent="vlan10"), "parent", "own parent"),
    ("vlan", "ifupdown", dict(name="vlan10", id=10, parent="eth/0"), "parent", "'/'"),
]


@pytest.mark.parametrize("kind,provider,args,option,words", BAD, ids=["%s-%s" % (b[0], b[3]) for b in BAD])
def test_bad_input_names_the_option(kind, provider, args, option, words):
    with pytest.raises(VirtforgeError) as info:
        model.desired(kind, params(kind, **args), provider)
    assert info.value.option == option
    assert info.value.message.startswith(option + ": ")
    assert words in info.value.message


def test_there_are_many_bad_input_cases():
    assert len(BAD) >= 10
    assert {b[3] for b in BAD} >= {"mode", "id", "name", "forward_delay", "miimon", "primary"}


@pytest.mark.parametrize("given,canonical", [
    ("0", "balance-rr"), ("1", "active-backup"), ("2", "balance-xor"), ("3", "broadcast"), ("4", "802.3ad"),
    ("5", "balance-tlb"), ("6", "balance-alb"), ("Active-Backup", "active-backup"), ("lacp", "802.3ad"),
    (4, "802.3ad"),
])
def test_bond_modes_are_canonicalised(given, canonical):
    assert model.canonical_bond_mode(given) == canonical


def test_all_seven_modes():
    assert len(model.BOND_MODES) == 7
    for mode in model.BOND_MODES:
        want = model.desired("bond", params("bond", name="bond0", mode=mode), "ifupdown")
        assert want["config"]["mode"] == mode


def test_desired_holds_only_what_the_user_set():
    want = model.desired("bridge", params("bridge", name="br0"), "iproute2")
    # stp is off by default for VM bridges; nothing else is managed
    assert want["config"] == {"stp": False}
    args = params("bond", name="bond0", members=["eth1", "eth0"], mode="1", miimon=100, primary="eth0")
    want = model.desired("bond", args, "ifupdown")
    assert want["config"] == {"mode": "active-backup", "miimon": 100, "members": ["eth0", "eth1"],
                              "primary": "eth0"}


def test_ip_configuration_is_canonical():
    want = model.desired("vlan", params("vlan", name="vlan10", id=10, parent="bond0",
                                        ip=dict(method="static", addresses=["192.0.2.10/24", "2001:db8:0::1/64"],
                                                gateway="192.0.2.1", dns=["192.0.2.53"])), "ifupdown")
    assert want["config"]["ip.addresses"] == ["192.0.2.10/24", "2001:db8::1/64"]
    assert want["config"]["ip.gateway"] == "192.0.2.1"
    assert want["config"]["ip.dns"] == ["192.0.2.53"]
    none = model.desired("bridge", params("bridge", name="br0", ip=dict(method="none")), "iproute2")
    assert none["config"]["ip.addresses"] == [] and none["config"]["ip.gateway"] is None


def test_absent_needs_nothing_else():
    want = model.desired("vlan", params("vlan", name="vlan10", state="absent"), "ifupdown")
    assert want == dict(name="vlan10", kind="vlan", state="absent", config={})


def test_describe_is_stable_text():
    text = model.describe("bridge", "br0", dict(exists=True, config={"stp": False, "ports": ["eth0"], "mtu": 1500}))
    assert text == "bridge br0\n  mtu: 1500\n  stp: no\n  ports: eth0\n"
    assert model.describe("bridge", "br0", dict(exists=False)) == ""
