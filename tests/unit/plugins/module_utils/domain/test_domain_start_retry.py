"""The domain engine's start step: a start refused with EAGAIN is tried again, anything else is not."""

import types

import libvirt
import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain import manager
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.manager import DomainManager

EAGAIN = "failed to load cgroup BPF prog: Resource temporarily unavailable"


class Refusal(libvirt.libvirtError):
    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def get_error_message(self):
        return self.message


class Dom(object):
    """create() raises the given errors one by one, then starts."""

    def __init__(self, errors):
        self.errors = list(errors)
        self.active = False
        self.creates = 0

    def isActive(self):  # noqa: N802 - libvirt's name
        return self.active

    def create(self):
        self.creates += 1
        if self.errors:
            raise self.errors.pop(0)
        self.active = True


def _manager():
    slept, warned = [], []
    mgr = DomainManager(types.SimpleNamespace(log=lambda msg: None, warn=warned.append, params={}),
                        sleep=slept.append)
    mgr.warned = warned
    return mgr, slept


def test_eagain_is_tried_again_until_it_starts():
    mgr, slept = _manager()
    dom = Dom([Refusal(EAGAIN), Refusal(EAGAIN)])
    mgr._start(types.SimpleNamespace(name="vm1", dom=dom))
    assert dom.active and dom.creates == 3 and slept == [1, 2]
    assert mgr.warned == ["domain vm1 started on attempt 3: libvirt refused the start before with "
                          "'Resource temporarily unavailable'"]


def test_eagain_gives_up_after_the_retries():
    mgr, slept = _manager()
    dom = Dom([Refusal(EAGAIN)] * (manager.START_RETRIES + 1))
    with pytest.raises(libvirt.libvirtError) as err:
        mgr._start(types.SimpleNamespace(name="vm1", dom=dom))
    assert EAGAIN in err.value.get_error_message()
    assert dom.creates == manager.START_RETRIES + 1 and len(slept) == manager.START_RETRIES


def test_other_errors_are_not_tried_again():
    mgr, slept = _manager()
    dom = Dom([Refusal("Cannot access storage file '/x.qcow2': No such file or directory")])
    with pytest.raises(libvirt.libvirtError):
        mgr._start(types.SimpleNamespace(name="vm1", dom=dom))
    assert dom.creates == 1 and slept == []


def test_a_domain_that_came_up_meanwhile_is_not_started_twice():
    mgr, slept = _manager()
    dom = Dom([Refusal(EAGAIN)])
    original = dom.create

    def create():
        try:
            original()
        finally:
            dom.active = True   # the refused start was in fact the second of two: another one won
    dom.create = create
    mgr._start(types.SimpleNamespace(name="vm1", dom=dom))
    assert dom.creates == 1 and slept == [1] and mgr.warned == []
