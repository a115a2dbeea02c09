import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _batch
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

SPEC = dict(
    uri=dict(type="str"),
    name=dict(type="str", required=True),
    pool=dict(type="str"),
    mode=dict(type="str", choices=["linked", "full"], default="linked"),
    size=dict(type="int"),
    force=dict(type="bool", default=False),
    volumes=dict(type="list", elements="dict"),
)


class FakeModule(object):
    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


def params(**kw):
    base = dict(uri="qemu:///system", name=None, pool=None, mode="linked", size=None, force=False, volumes=None)
    base.update(kw)
    return base


def test_no_list_means_no_batch():
    assert _batch.expand(FakeModule(params(name="x")), "volumes", SPEC) is None


def test_top_level_values_are_shared_item_values_win_defaults_last():
    module = FakeModule(params(pool="p1", size=5, volumes=[dict(name="a"), dict(name="b", pool="p2", mode="full")]))
    items = _batch.expand(module, "volumes", SPEC, required=("name",), not_shared=("name",))
    assert [(i["name"], i["pool"], i["mode"], i["size"], i["force"]) for i in items] == [
        ("a", "p1", "linked", 5, False), ("b", "p2", "full", 5, False)]
    assert items[0]["uri"] == "qemu:///system" and items[0]["volumes"] is None


@pytest.mark.parametrize("item,fragment", [
    (dict(pool="p"), "volumes[0].name: is required"),
    (dict(name="a", mode="magic"), "volumes[0]: "),
    (dict(name="a", size="big"), "volumes[0]: "),
    (dict(name="a", colour="red"), "volumes[0]: unknown option(s) colour"),
    ("a", "volumes[0]: each item must be a dictionary"),
])
def test_bad_items_are_named(item, fragment):
    with pytest.raises(VirtforgeError) as err:
        _batch.expand(FakeModule(params(volumes=[item])), "volumes", SPEC, required=("name",))
    assert fragment in err.value.message


class Plan(object):
    def __init__(self, changed):
        self.changed = changed


def test_every_item_is_planned_before_any_is_applied():
    calls = []

    def plan_fn(view):
        calls.append(("plan", view.params["name"]))
        if view.params["name"] == "bad":
            raise VirtforgeError("no such pool", option="pool")
        return Plan(view.params["name"] != "same")

    module = FakeModule(params())
    items = [dict(name="a"), dict(name="bad")]
    with pytest.raises(VirtforgeError) as err:
        _batch.run_batch(module, items, plan_fn, lambda v, p: calls.append(("apply", v.params["name"])),
                         lambda v, p: {}, list_option="volumes")
    assert err.value.message == "volumes[1].pool: bad: no such pool"
    assert calls == [("plan", "a"), ("plan", "bad")]


def test_apply_only_changed_and_never_in_check_mode():
    applied = []
    for check in (False, True):
        module = FakeModule(params(), check_mode=check)
        results = _batch.run_batch(
            module, [dict(name="new"), dict(name="same")], lambda v: Plan(v.params["name"] != "same"),
            lambda v, p: applied.append((v.check_mode, v.params["name"])),
            lambda v, p: dict(name=v.params["name"], changed=p.changed, check=v.check_mode))
        assert results == [dict(name="new", changed=True, check=check), dict(name="same", changed=False, check=check)]
    assert applied == [(False, "new")]
