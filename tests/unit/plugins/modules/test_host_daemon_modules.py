"""main() of libvirt_config and multipath: check mode, diff, refusals naming the option."""

import os
import sys

from ansible.module_utils import basic

from ansible_collections.virtforge.libvirt.plugins.module_utils import _multipath
from ansible_collections.virtforge.libvirt.plugins.modules import libvirt_config, multipath

sys.path.insert(0, os.path.dirname(__file__))
from module_main import main_outcome  # noqa: E402


def run(monkeypatch, module, check_mode=False, diff=False, **args):
    monkeypatch.setattr("ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt_conf.STATE_FILE",
                        "/nonexistent/virtforge-test-state.json")
    calls = []

    def run_command(self, argv, **kw):
        calls.append(list(argv))
        return (1, "", "") if os.path.basename(argv[0]) == "pgrep" else (0, "", "")

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, tool, required=False, opt_dirs=None: "/usr/sbin/" + tool)
    out = main_outcome(monkeypatch, module, args, check_mode=check_mode, diff=diff)
    out["_calls"] = calls
    return out


def test_libvirt_config_check_mode_diff_and_nothing_written(monkeypatch, tmp_path):
    (tmp_path / "qemu.conf").write_text('#user = "root"\n')
    out = run(monkeypatch, libvirt_config, check_mode=True, diff=True, config_dir=str(tmp_path),
              service_mgr="none", settings={"qemu.conf": {"user": "libvirt-qemu"}})
    assert not out["failed"] and out["changed"] and out["config_changed"] == ["libvirtd.conf", "qemu.conf"]
    assert out["diff"][1]["after"] == 'user = "libvirt-qemu"\n'
    assert (tmp_path / "qemu.conf").read_text() == '#user = "root"\n'
    assert not (tmp_path / "libvirtd.conf").exists() and out["_calls"] == []


def test_libvirt_config_without_diff_returns_none(monkeypatch, tmp_path):
    out = run(monkeypatch, libvirt_config, config_dir=str(tmp_path), service_mgr="none")
    assert not out["failed"] and "diff" not in out and out["config_changed"] == ["libvirtd.conf"]
    assert (tmp_path / "libvirtd.conf").read_text() == "listen_tls = 0\nlisten_tcp = 0\n"


def test_libvirt_config_refusal_names_the_setting(monkeypatch, tmp_path):
    out = run(monkeypatch, libvirt_config, config_dir=str(tmp_path), service_mgr="none",
              settings={"virtlogd.conf": {"max_size": "2M\n"}})
    assert out["failed"] and out["msg"].startswith("settings.virtlogd.conf.max_size: ")
    assert not (tmp_path / "libvirtd.conf").exists()


def test_libvirt_config_starts_what_does_not_run_without_systemd(monkeypatch, tmp_path):
    monkeypatch.setattr("ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt_conf.RUNTIME_DIRS",
                        (str(tmp_path / "run"),))
    out = run(monkeypatch, libvirt_config, config_dir=str(tmp_path), service_mgr="direct")
    assert out["started"] == ["virtlogd", "libvirtd"]
    assert ["/usr/sbin/libvirtd", "-d"] in out["_calls"] and ["/usr/sbin/virtlogd", "-d"] in out["_calls"]


def test_multipath_check_mode_and_diff(monkeypatch, tmp_path):
    monkeypatch.setattr(_multipath, "CONF_D", str(tmp_path))
    monkeypatch.setattr(_multipath, "MAIN_CONF", str(tmp_path / "multipath.conf"))
    out = run(monkeypatch, multipath, check_mode=True, diff=True, conf_file=str(tmp_path / "virtforge.conf"),
              service_mgr="direct", blacklist=["^vd[a-z]+"])
    assert not out["failed"] and out["changed"] and out["started"] and not out["reconfigured"]
    assert [d["after_header"] for d in out["diff"]] == [str(tmp_path / "multipath.conf"),
                                                        str(tmp_path / "virtforge.conf")]
    assert 'devnode "^vd[a-z]+"' in out["diff"][1]["after"]
    assert os.listdir(tmp_path) == []


def test_multipath_refuses_a_file_multipathd_does_not_read(monkeypatch):
    out = run(monkeypatch, multipath, conf_file="/etc/multipath/virtforge.conf")
    assert out["failed"] and out["msg"].startswith("conf_file: /etc/multipath/virtforge.conf is not a .conf file")
