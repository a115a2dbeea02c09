"""The virtforge.libvirt.libvirt inventory plugin against libvirt's test:///default driver.

The plugin gets its option definitions from its DOCUMENTATION through Ansible's plugin loader, as
under ansible-inventory (the loader's collection finder cannot be installed here because the unit
tests import the collection from a plain sys.path entry)."""

import pytest
import yaml
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.utils.display import Display
from lxml import etree

from ansible_collections.virtforge.libvirt.plugins.inventory import libvirt as plugin_module
from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt

FQCN = "virtforge.libvirt.libvirt"
PREFIX = "vft-info-inv-"
NS = _libvirt.METADATA_NS


def new_plugin():
    """What inventory_loader.get(FQCN) does: config definitions from DOCUMENTATION, then the object."""
    path = plugin_module.__file__
    inventory_loader._load_config_defs(FQCN, plugin_module, path)
    plugin = plugin_module.InventoryModule()
    inventory_loader._update_object(obj=plugin, name=FQCN, path=path, resolved=FQCN)
    return plugin


@pytest.fixture
def domains():
    conn = _libvirt.connect("test:///default")
    for index, tags in enumerate((["web", "prod"], ["web"], ["db"])):
        root = etree.Element("domain", type="test")
        etree.SubElement(root, "name").text = "%s%d" % (PREFIX, index)
        etree.SubElement(root, "memory", unit="MiB").text = str(512 * (index + 1))
        etree.SubElement(root, "vcpu").text = "1"
        etree.SubElement(etree.SubElement(root, "os"), "type").text = "hvm"
        inst = etree.SubElement(etree.SubElement(root, "metadata"), "{%s}instance" % NS, nsmap={"vf": NS})
        for tag in tags:
            etree.SubElement(inst, "{%s}tag" % NS).text = tag
        devices = etree.SubElement(root, "devices")
        nic = etree.SubElement(devices, "interface", type="network")
        etree.SubElement(nic, "mac", address="52:54:00:00:20:%02x" % index)
        etree.SubElement(nic, "source", network="default")
        dom = conn.defineXML(etree.tostring(root, encoding="unicode"))
        if index < 2:
            dom.create()
    yield conn
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(PREFIX):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    conn.close()


def load(tmp_path, config, name="lab.libvirt.yml", cache=True):
    path = tmp_path / name
    lines = ["plugin: virtforge.libvirt.libvirt"]
    config = dict(dict(uris=["test:///default"], name=[PREFIX + "*"]), **config)

    lines.append(yaml.safe_dump(config, default_flow_style=False))
    path.write_text("\n".join(lines))
    plugin = new_plugin()
    inventory = InventoryData()
    assert plugin.verify_file(str(path))
    plugin.parse(inventory, DataLoader(), str(path), cache=cache)
    try:
        plugin.update_cache_if_changed()  # as InventoryManager does after parse()
    except AttributeError:  # no cache configured
        pass
    return plugin, inventory


def hosts_of(inventory, group):
    return sorted(h.name for h in inventory.groups[group].get_hosts()) if group in inventory.groups else []


def test_verify_file_wants_the_suffix(tmp_path):
    plugin = new_plugin()
    for name, ok in (("a.libvirt.yml", True), ("a.libvirt.yaml", True), ("a.yml", False), ("libvirt.yml", False)):
        (tmp_path / name).write_text("plugin: virtforge.libvirt.libvirt\n")
        assert plugin.verify_file(str(tmp_path / name)) is ok, name


def test_hosts_groups_and_hostvars(tmp_path, domains):
    _plugin, inventory = load(tmp_path, {})
    assert sorted(inventory.hosts) == [PREFIX + "0", PREFIX + "1", PREFIX + "2"]
    assert hosts_of(inventory, "state_running") == [PREFIX + "0", PREFIX + "1"]
    assert hosts_of(inventory, "state_stopped") == [PREFIX + "2"]
    assert hosts_of(inventory, "tag_web") == [PREFIX + "0", PREFIX + "1"]
    assert hosts_of(inventory, "tag_prod") == [PREFIX + "0"]
    assert hosts_of(inventory, "tag_db") == [PREFIX + "2"]
    hv = inventory.get_host(PREFIX + "0").vars
    assert hv["libvirt_state"] == "running" and hv["libvirt_tags"] == ["prod", "web"]
    assert hv["libvirt_max_memory"] == 512 and hv["libvirt_vcpus"] == 1
    assert hv["libvirt_uri"] == "test:///default" and hv["libvirt_hypervisor"] == "localhost"
    assert hv["libvirt_interfaces"][0]["mac"] == "52:54:00:00:20:00"
    assert hv["ansible_connection"] == "ssh"
    # the test driver answers every running domain's lease query with this address
    assert hv["ansible_host"] == hv["libvirt_ip_addresses"][0]["address"]
    assert "ansible_host" not in inventory.get_host(PREFIX + "2").vars  # stopped: no IP


def test_options_prefix_connection_filters_and_constructed(tmp_path, domains):
    _plugin, inventory = load(tmp_path, dict(
        vars_prefix="lv_", ansible_connection="", host_prefix=True, state=["running"], tags=["web"],
        state_group_prefix="", tag_group_prefix="t_",
        compose=dict(mem_gib="lv_max_memory / 1024"),
        groups=dict(big="lv_max_memory >= 1024"),
        keyed_groups=[dict(key="lv_domain_type", prefix="type")],
    ))
    names = ["localhost_%s0" % PREFIX, "localhost_%s1" % PREFIX]
    assert sorted(inventory.hosts) == names
    assert "state_running" not in inventory.groups
    assert hosts_of(inventory, "t_web") == names
    assert hosts_of(inventory, "big") == [names[1]]
    assert hosts_of(inventory, "type_test") == names
    hv = inventory.get_host(names[1]).vars
    assert hv["mem_gib"] == 1 and hv["lv_name"] == PREFIX + "1" and "ansible_connection" not in hv


def test_ansible_host_preferences(tmp_path, domains):
    _plugin, inventory = load(tmp_path, dict(ansible_host_network="elsewhere"))
    assert "ansible_host" not in inventory.get_host(PREFIX + "0").vars
    _plugin, inventory = load(tmp_path, dict(ansible_host_sources=["arp"], ip_sources=["lease"]))
    assert "ansible_host" not in inventory.get_host(PREFIX + "0").vars
    _plugin, inventory = load(tmp_path, dict(ip_sources=[]))
    assert inventory.get_host(PREFIX + "0").vars["libvirt_ip_addresses"] == []


def test_same_domain_on_two_uris_is_kept_once_with_a_warning(tmp_path, domains, monkeypatch):
    warnings = []
    monkeypatch.setattr(Display, "warning", lambda self, msg, *a, **k: warnings.append(msg))
    _plugin, inventory = load(tmp_path, dict(uris=["test:///default", "test:///default"]))
    assert len(inventory.hosts) == 3
    assert any("host_prefix" in w for w in warnings)


def test_unreachable_uri_fails_or_is_skipped(tmp_path, domains, monkeypatch):
    bad = "qemu+unix:///system?socket=/nonexistent/vft-info.sock"
    with pytest.raises(AnsibleParserError, match="nonexistent"):
        load(tmp_path, dict(uris=[bad, "test:///default"]))
    monkeypatch.setattr(Display, "warning", lambda self, msg, *a, **k: None)
    _plugin, inventory = load(tmp_path, dict(uris=[bad, "test:///default"], ignore_unreachable=True))
    assert len(inventory.hosts) == 3


def test_cache_is_used_and_refreshed(tmp_path, domains, monkeypatch):
    cache = dict(cache=True, cache_plugin="jsonfile", cache_connection=str(tmp_path / "cache"))
    _plugin, inventory = load(tmp_path, cache, cache=False)  # refresh: query and write the cache
    assert len(inventory.hosts) == 3

    def no_connection(*args, **kwargs):
        raise AssertionError("the cache should have answered")
    monkeypatch.setattr(plugin_module, "connect", no_connection)
    _plugin, inventory = load(tmp_path, cache, cache=True)
    assert sorted(inventory.hosts) == [PREFIX + "0", PREFIX + "1", PREFIX + "2"]
    assert hosts_of(inventory, "tag_web") == [PREFIX + "0", PREFIX + "1"]


def test_bad_options_fail_even_when_unreachable_uris_are_ignored(tmp_path, domains):
    # choices are checked by Ansible's configuration manager ...
    with pytest.raises(AnsibleError, match="asleep"):
        load(tmp_path, dict(state=["asleep"], ignore_unreachable=True))
    # ... the rest by the query, before any connection
    with pytest.raises(AnsibleParserError, match=r"tags\[0\]"):
        load(tmp_path, dict(tags=[""], ignore_unreachable=True))
