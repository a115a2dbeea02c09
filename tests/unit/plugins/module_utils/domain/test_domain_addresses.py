"""The domain module's guest IPs: the agent's view when it answers, leases only without an agent."""

import libvirt

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.manager import DomainManager

LO = {"lo": {"hwaddr": "00:00:00:00:00:00", "addrs": [{"addr": "127.0.0.1", "prefix": 8, "type": 0}]}}
LINK_LOCAL = {"ens2": {"hwaddr": "52:54:00:aa:bb:01", "addrs": [{"addr": "fe80::1", "prefix": 64, "type": 1}]}}
AGENT = {"ens2": {"hwaddr": "52:54:00:AA:BB:01", "addrs": [{"addr": "10.251.0.141", "prefix": 24, "type": 0}]}}
STALE_LEASES = {"vnet0": {"hwaddr": "52:54:00:aa:bb:01", "addrs": [{"addr": "10.251.0.138", "prefix": 24, "type": 0},
                                                                   {"addr": "10.251.0.141", "prefix": 24, "type": 0}]}}


class Dom(object):
    def __init__(self, agent, leases):
        self.answers = {1: agent, 0: leases}

    def interfaceAddresses(self, source, flags):  # noqa: N802 - libvirt's name
        answer = self.answers[source]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_agent_view_wins_over_stale_leases():
    found = DomainManager.addresses(Dom(dict(LO, **AGENT), STALE_LEASES))
    assert [(e["address"], e["source"], e["mac"]) for e in found] == [("10.251.0.141", "agent", "52:54:00:aa:bb:01")]


def test_agent_answering_without_an_address_yet_means_no_address():
    # the DHCP client has not finished: a stale lease must not be taken for the guest's address
    assert DomainManager.addresses(Dom(dict(LO, **LINK_LOCAL), STALE_LEASES)) == []


def test_no_agent_falls_back_to_leases():
    found = DomainManager.addresses(Dom(libvirt.libvirtError("agent not connected"), STALE_LEASES))
    assert [e["address"] for e in found] == ["10.251.0.138", "10.251.0.141"]
    assert {e["source"] for e in found} == {"lease"}
