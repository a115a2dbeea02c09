"""Helpers for the domain engine tests: a fake host (no libvirt needed) and golden files."""

import os

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.context import DomainContext
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


class FakeHost(object):
    """What HostCache answers, without a connection."""

    conn = None
    uri = "test:///fake"
    local_files = False

    def __init__(self):
        self.format_hints = {}
        self.warnings = []
        self.volumes = {("images", "web.qcow2"): ("/var/lib/libvirt/images/web.qcow2", "qcow2")}

    def warn(self, msg):
        self.warnings.append(msg)

    def default_domain_type(self):
        return "qemu"

    def canonical_machine(self, machine, arch=None):
        return {"pc": "pc-i440fx-7.2", "q35": "pc-q35-7.2"}.get(machine, machine)

    def network_names(self):
        return {"default", "vflab-net"}

    def volume_path(self, pool, volume, option):
        if pool != "images":
            raise VirtforgeError("storage pool %r does not exist" % pool, option=option + ".pool")
        if (pool, volume) not in self.volumes:
            raise VirtforgeError("volume %r does not exist" % volume, option=option + ".volume")
        return self.volumes[(pool, volume)][0]

    def volume_format(self, pool, volume):
        return self.volumes[(pool, volume)][1]


@pytest.fixture
def host():
    return FakeHost()


@pytest.fixture
def make_ctx(host):
    def make(name="vft-dom-unit", creating=False, running=False, prefix=""):
        return DomainContext(host, name, prefix=prefix, running=running, creating=creating)
    return make


def golden(name):
    with open(os.path.join(GOLDEN, name)) as handle:
        return handle.read()
