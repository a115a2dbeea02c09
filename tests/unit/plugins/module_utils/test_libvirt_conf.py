# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt_config's engine: the key = value edits, systemctl's answers, which daemon needs what."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt_conf as conf
from ansible_collections.virtforge.libvirt.plugins.module_utils import _service
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

LIBVIRTD_CONF = """# Master libvirt daemon configuration file
#
# For further information consult https://libvirt.org/format.html

#listen_tls = 0
#listen_tcp = 1
#auth_tcp = "sasl"
#max_clients = 5000
"""

SHOW_TEMPLATE = """Id=virtlogd.socket
LoadState=loaded
ActiveState={vl_sock_active}
UnitFileState={vl_file}

MainPID={vl_pid}
Id=virtlogd.service
LoadState=loaded
ActiveState={vl_active}
UnitFileState={vl_file}

Id=libvirtd.socket
LoadState=loaded
ActiveState=active
UnitFileState=enabled

MainPID={lv_pid}
Id=libvirtd.service
LoadState=loaded
ActiveState={lv_active}
UnitFileState=enabled

Id=libvirtd-tls.socket
LoadState=loaded
ActiveState=inactive
UnitFileState=disabled

Id=libvirtd-tcp.socket
LoadState=not-found
ActiveState=inactive
UnitFileState=
"""


class Runner(object):
    """Answers pgrep and systemctl show as the test says; records every command."""

    def __init__(self, pids=None, show=None):
        self.pids = pids or {}
        self.show = show
        self.calls = []

    def which(self, tool, required=True):
        return "/usr/bin/" + tool

    def run(self, argv, check=True, what=None, **_kw):
        self.calls.append(list(argv))
        tool = os.path.basename(argv[0])
        if tool == "pgrep":
            pid = self.pids.get(argv[-1], 0)
            return (0, "%d\n" % pid, "") if pid else (1, "", "")
        if tool == "systemctl" and argv[1] == "show":
            return 0, self.show, ""
        return 0, "", ""

    def commands(self, tool):
        return [c[1:] for c in self.calls if os.path.basename(c[0]) == tool and c[1] != "show"]


@pytest.fixture(autouse=True)
def state_file(tmp_path, monkeypatch):
    path = tmp_path / "run" / "libvirt_config.json"
    monkeypatch.setattr(conf, "STATE_FILE", str(path))
    return path


def _params(config_dir, **kw):
    params = dict(settings={}, listen_tls=False, listen_tcp=False, config_dir=str(config_dir), start=True,
                  restart=True, service_mgr="direct")
    params.update(kw)
    return params


def _files(tmp_path, libvirtd=LIBVIRTD_CONF, qemu="#user = \"root\"\n", virtlogd="#max_size = 2097152\n"):
    for name, text in (("libvirtd.conf", libvirtd), ("qemu.conf", qemu), ("virtlogd.conf", virtlogd)):
        (tmp_path / name).write_text(text)
        os.utime(tmp_path / name, (1000, 1000))
    return tmp_path


def _start_times(monkeypatch, when):
    monkeypatch.setattr(_service, "process_start_time", lambda pid, proc="/proc": when if pid else None)


def test_values_as_libvirt_reads_them():
    assert conf.line_for("listen_tls", True, "o") == "listen_tls = 1"
    assert conf.line_for("max_clients", 64, "o") == "max_clients = 64"
    assert conf.line_for("user", "libvirt-qemu", "o") == 'user = "libvirt-qemu"'
    assert conf.line_for("cgroup_controllers", ["cpu", "memory"], "o") == 'cgroup_controllers = ["cpu", "memory"]'
    # libvirt reads no escapes: no JSON \\u or \\t in a list either
    assert conf.line_for("user_list", ["café", "a\tb"], "o") == 'user_list = ["café", "a\tb"]'


@pytest.mark.parametrize("value, words", [
    ('a"b', "double quote"), ("a\nb", "newline"), (1.5, "whole numbers"), ({"a": 1}, "not dict"),
    ([1, 2], "strings only"),
])
def test_values_libvirt_cannot_read_are_refused_naming_the_setting(value, words):
    with pytest.raises(VirtforgeError) as err:
        conf.line_for("key", value, "settings.qemu.conf.key")
    assert "settings.qemu.conf.key" in err.value.message and words in err.value.message


def test_the_commented_example_is_replaced_in_place_and_the_rest_kept():
    text = conf.set_line(LIBVIRTD_CONF, "max_clients", "max_clients = 64")
    assert text.splitlines()[-1] == "max_clients = 64"
    assert text.replace("max_clients = 64", "#max_clients = 5000") == LIBVIRTD_CONF


def test_an_active_line_wins_over_a_later_example_and_a_new_key_is_appended():
    text = "max_clients = 10\n#max_clients = 5000\n"
    assert conf.set_line(text, "max_clients", "max_clients = 64") == "max_clients = 64\n#max_clients = 5000\n"
    assert conf.set_line("a = 1", "b", "b = 2") == "a = 1\nb = 2\n"
    # a key that only starts like another is another key
    assert conf.set_line("max_clients_x = 1\n", "max_clients", "max_clients = 2") == (
        "max_clients_x = 1\nmax_clients = 2\n")


def test_every_bad_name_is_reported_at_once():
    with pytest.raises(VirtforgeError) as err:
        conf.validate_settings({"../x.conf": {"a": 1}, "qemu.conf": {"Max Clients": 1, "ok": 'q"'},
                                "virtlogd.conf": [1]})
    msg = err.value.message
    for part in ("settings.../x.conf", "settings.qemu.conf.Max Clients", "settings.qemu.conf.ok",
                 "settings.virtlogd.conf: must be a dict"):
        assert part in msg


def test_check_mode_writes_nothing_and_names_what_would_change(tmp_path, monkeypatch):
    _files(tmp_path)
    _start_times(monkeypatch, when=2000)
    runner = Runner(pids={"libvirtd": 11, "virtlogd": 12})
    result = conf.run(_params(tmp_path, settings={"qemu.conf": {"user": "libvirt-qemu"}}), runner, True)
    assert result["changed"] and result["config_changed"] == ["libvirtd.conf", "qemu.conf"]
    assert result["daemons_changed"] == ["libvirtd"]
    assert result["restart_required"] == ["libvirtd"]
    assert (tmp_path / "qemu.conf").read_text() == '#user = "root"\n'
    assert not runner.commands("libvirtd")
    headers = [str(tmp_path / "libvirtd.conf"), str(tmp_path / "qemu.conf")]
    assert [d["before_header"] for d in result["diff"]] == headers


def test_a_real_run_writes_keeps_the_mode_and_a_second_run_changes_nothing(tmp_path, monkeypatch):
    _files(tmp_path)
    os.chmod(tmp_path / "qemu.conf", 0o600)
    _start_times(monkeypatch, when=2000)
    params = _params(tmp_path, settings={"qemu.conf": {"user": "libvirt-qemu"},
                                         "virtlogd.conf": {"max_size": 4096}})
    first = conf.run(params, Runner(pids={"libvirtd": 11, "virtlogd": 12}), False)
    assert first["changed"] and first["config_changed"] == ["libvirtd.conf", "qemu.conf", "virtlogd.conf"]
    assert (tmp_path / "qemu.conf").read_text() == 'user = "libvirt-qemu"\n'
    assert os.stat(tmp_path / "qemu.conf").st_mode & 0o777 == 0o600
    assert "listen_tls = 0\nlisten_tcp = 0\n" in (tmp_path / "libvirtd.conf").read_text()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
    # without systemd the daemons are not restarted: both run with older settings
    assert first["restart_required"] == ["libvirtd", "virtlogd"] and first["restarted"] == []
    second = conf.run(params, Runner(pids={"libvirtd": 11, "virtlogd": 12}), False)
    assert not second["changed"] and second["config_changed"] == []
    # the files are still newer than the daemons
    assert second["restart_required"] == ["libvirtd", "virtlogd"]
    _start_times(monkeypatch, when=time.time() + 10)
    third = conf.run(params, Runner(pids={"libvirtd": 11, "virtlogd": 12}), False)
    assert third["restart_required"] == []


def test_without_systemd_a_daemon_that_does_not_run_is_started(tmp_path, monkeypatch):
    _files(tmp_path)
    _start_times(monkeypatch, when=2000)
    monkeypatch.setattr(conf, "RUNTIME_DIRS", (str(tmp_path / "run"),))
    runner = Runner(pids={"virtlogd": 12})
    result = conf.run(_params(tmp_path, listen_tls=True), runner, False)
    assert result["started"] == ["libvirtd"] and result["changed"]
    assert runner.commands("libvirtd") == [["-d", "--listen"]]
    assert os.path.isdir(tmp_path / "run")
    # a daemon started now reads the new file: only the running virtlogd is left (its file did not change)
    assert result["restart_required"] == []


def _systemd(show_kw, tmp_path, monkeypatch):
    _files(tmp_path)
    _start_times(monkeypatch, when=2000)
    show = SHOW_TEMPLATE.format(**dict(dict(vl_pid=12, vl_active="active", vl_sock_active="active", vl_file="enabled",
                                            lv_pid=11, lv_active="active"), **show_kw))
    return Runner(show=show)


def test_systemd_converged_units_cost_one_systemctl_show(tmp_path, monkeypatch):
    runner = _systemd({}, tmp_path, monkeypatch)
    conf.run(_params(tmp_path, service_mgr="systemd"), runner, False)   # writes listen_* once
    runner = Runner(show=runner.show)
    _start_times(monkeypatch, when=time.time() + 10)
    result = conf.run(_params(tmp_path, service_mgr="systemd"), runner, False)
    assert not result["changed"] and result["units"] == [] and result["restart_required"] == []
    assert [c[1] for c in runner.calls] == ["show"]


def test_systemd_enables_and_starts_what_is_off_and_restarts_the_daemon_whose_file_changed(tmp_path, monkeypatch):
    runner = _systemd(dict(vl_pid=0, vl_active="inactive", vl_sock_active="inactive", vl_file="disabled"),
                      tmp_path, monkeypatch)
    params = _params(tmp_path, service_mgr="systemd", settings={"qemu.conf": {"user": "libvirt-qemu"}})
    result = conf.run(params, runner, False)
    assert result["units"] == ["enable virtlogd.socket", "start virtlogd.socket", "enable virtlogd.service",
                               "restart libvirtd.service"]
    # virtlogd's service starts with the first guest (socket activation): not started here
    assert result["started"] == []
    assert result["restarted"] == ["libvirtd"] and result["restart_required"] == []
    assert runner.commands("systemctl") == [["enable", "virtlogd.socket"], ["start", "virtlogd.socket"],
                                            ["enable", "virtlogd.service"], ["restart", "libvirtd.service"]]


def test_systemd_check_mode_runs_only_show(tmp_path, monkeypatch):
    runner = _systemd(dict(vl_pid=0, vl_active="inactive", vl_sock_active="inactive"), tmp_path, monkeypatch)
    result = conf.run(_params(tmp_path, service_mgr="systemd", listen_tls=True), runner, True)
    assert result["changed"] and "start libvirtd-tls.socket" in result["units"]
    assert result["restarted"] == ["libvirtd"]
    assert runner.commands("systemctl") == []


def test_systemd_a_socket_that_does_not_exist_cannot_be_turned_on(tmp_path, monkeypatch):
    runner = _systemd({}, tmp_path, monkeypatch)
    with pytest.raises(VirtforgeError) as err:
        conf.run(_params(tmp_path, service_mgr="systemd", listen_tcp=True), runner, False)
    assert "libvirtd-tcp.socket does not exist" in err.value.message


def test_a_socket_libvirtd_is_not_restarted_when_it_does_not_run(tmp_path, monkeypatch):
    runner = _systemd(dict(lv_pid=0, lv_active="inactive"), tmp_path, monkeypatch)
    result = conf.run(_params(tmp_path, service_mgr="systemd", settings={"qemu.conf": {"user": "x"}}), runner, False)
    assert result["restarted"] == [] and result["restart_required"] == []
    assert ["restart", "libvirtd.service"] not in runner.commands("systemctl")


def test_restart_false_reports_instead(tmp_path, monkeypatch):
    runner = _systemd({}, tmp_path, monkeypatch)
    result = conf.run(_params(tmp_path, service_mgr="systemd", restart=False,
                              settings={"virtlogd.conf": {"max_size": 1}}), runner, False)
    assert result["restarted"] == [] and result["restart_required"] == ["libvirtd", "virtlogd"]


def test_cleartext_tcp_is_refused_before_anything_is_written(tmp_path):
    _files(tmp_path)
    with pytest.raises(VirtforgeError) as err:
        conf.run(_params(tmp_path, listen_tcp=True, settings={"libvirtd.conf": {"auth_tcp": "none"}}), Runner(), False)
    assert err.value.option == "listen_tcp"
    assert (tmp_path / "libvirtd.conf").read_text() == LIBVIRTD_CONF


def test_listen_set_twice_differently_is_refused(tmp_path):
    _files(tmp_path)
    with pytest.raises(VirtforgeError) as err:
        conf.run(_params(tmp_path, settings={"libvirtd.conf": {"listen_tls": 1}}), Runner(), False)
    assert err.value.option == "listen_tls"


def test_a_missing_config_dir_names_the_option(tmp_path):
    with pytest.raises(VirtforgeError) as err:
        conf.run(_params(tmp_path / "nope", service_mgr="none"), Runner(), False)
    assert err.value.option == "config_dir"


def test_service_mgr_none_looks_at_no_daemon(tmp_path):
    _files(tmp_path)
    runner = Runner()
    result = conf.run(_params(tmp_path, service_mgr="none"), runner, False)
    assert result["service_mgr"] is None and runner.calls == []


def test_systemctl_show_blocks_are_matched_by_id():
    text = "Id=b.service\nActiveState=active\n\nId=a.service\nActiveState=inactive\n"
    out = _service.parse_systemctl_show(text, ["a.service", "b.service"])
    assert out["a.service"]["ActiveState"] == "inactive" and out["b.service"]["ActiveState"] == "active"


def test_process_start_time_from_proc(tmp_path, monkeypatch):
    (tmp_path / "42").mkdir()
    fields = ["S"] + ["0"] * 18 + ["500"] + ["0"] * 10   # field 22 (starttime) is the 20th after ')'
    (tmp_path / "42" / "stat").write_text("42 (lib virt) d) " + " ".join(fields) + "\n")
    # boot = now - uptime, to 1/100 s (btime in /proc/stat is whole seconds: not used)
    (tmp_path / "uptime").write_text("1000.25 1900.00\n")
    monkeypatch.setattr(_service.time, "time", lambda: 5000.5)
    assert _service.process_start_time(42, str(tmp_path)) == 4000.25 + 500 / float(os.sysconf("SC_CLK_TCK"))
    assert _service.process_start_time(43, str(tmp_path)) is None


def test_a_daemon_restarted_right_after_the_write_is_not_older_than_its_file():
    assert not _service.older_than(100.30, 100.30)
    assert _service.older_than(100.30, 100.50)


def test_process_start_time_on_this_kernel_is_within_a_tick_of_the_real_start():
    tick = 1.0 / os.sysconf("SC_CLK_TCK")
    before = time.time()
    proc = subprocess.Popen(["sleep", "5"])
    after = time.time()
    try:
        started = _service.process_start_time(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    # /proc/uptime has 1/100 s; the start is counted in ticks: two ticks of slack either way
    assert before - 2 * tick <= started <= after + 2 * tick


def test_the_first_active_line_is_the_one_libvirt_reads_and_the_one_replaced():
    text = 'auth_tcp = "none"\nauth_tcp = "sasl"\n'
    assert conf.effective(text, "auth_tcp") == '"none"'
    assert conf.set_line(text, "auth_tcp", 'auth_tcp = "sasl"') == 'auth_tcp = "sasl"\nauth_tcp = "sasl"\n'


def test_a_list_over_several_lines_is_replaced_whole():
    text = 'a = 1\ncgroup_device_acl = [\n    "/dev/null",\n    "/dev/full"\n]\nb = 2\n'
    assert conf.set_line(text, "cgroup_device_acl", 'cgroup_device_acl = ["/dev/null"]') == (
        'a = 1\ncgroup_device_acl = ["/dev/null"]\nb = 2\n')
    # a commented example over several lines stays a comment
    text = '#cgroup_device_acl = [\n#    "/dev/null"\n#]\n'
    assert conf.set_line(text, "cgroup_device_acl", 'cgroup_device_acl = []') == (
        'cgroup_device_acl = []\n#    "/dev/null"\n#]\n')


def test_cleartext_tcp_guard_reads_the_first_line(tmp_path):
    _files(tmp_path, libvirtd='auth_tcp = "none"\n#auth_tcp = "sasl"\n')
    with pytest.raises(VirtforgeError):
        conf.run(_params(tmp_path, listen_tcp=True, service_mgr="none"), Runner(), False)


def test_a_file_without_a_final_newline_or_with_crlf_is_not_a_change(tmp_path):
    _files(tmp_path, libvirtd="listen_tls = 0\r\nlisten_tcp = 0")
    result = conf.run(_params(tmp_path, service_mgr="none"), Runner(), False)
    assert result["config_changed"] == [] and not result["changed"]


def test_a_socket_starts_while_libvirtd_runs_by_stopping_it_first(tmp_path, monkeypatch):
    runner = _systemd({}, tmp_path, monkeypatch)
    result = conf.run(_params(tmp_path, service_mgr="systemd", listen_tls=True), runner, False)
    assert runner.commands("systemctl") == [
        ["stop", "libvirtd.service"], ["enable", "libvirtd-tls.socket"], ["start", "libvirtd-tls.socket"],
        ["start", "libvirtd.service"]]
    assert result["restarted"] == ["libvirtd"] and result["restart_required"] == [] and result["started"] == []


def test_a_socket_that_needs_libvirtd_stopped_is_refused_without_restart(tmp_path, monkeypatch):
    runner = _systemd({}, tmp_path, monkeypatch)
    with pytest.raises(VirtforgeError) as err:
        conf.run(_params(tmp_path, service_mgr="systemd", listen_tls=True, restart=False), runner, False)
    assert err.value.option == "restart" and runner.commands("systemctl") == []


def test_virtlogd_is_reloaded_in_place_and_not_again_on_the_next_run(tmp_path, monkeypatch, state_file):
    runner = _systemd({}, tmp_path, monkeypatch)
    params = _params(tmp_path, service_mgr="systemd", settings={"virtlogd.conf": {"max_size": 4096}})
    first = conf.run(params, runner, False)
    assert ["reload", "virtlogd.service"] in runner.commands("systemctl")
    assert ["restart", "virtlogd.service"] not in runner.commands("systemctl")
    assert "virtlogd" in first["restarted"] and state_file.exists()
    # same pid, same start time (2000): the recorded reload says it read the file
    runner = Runner(show=runner.show)
    second = conf.run(params, runner, False)
    assert "virtlogd" not in second["restarted"] and second["restart_required"] == []
    assert ["reload", "virtlogd.service"] not in runner.commands("systemctl")


def test_check_mode_on_a_bare_host_plans_the_units_with_a_warning(tmp_path, monkeypatch):
    show = "".join("Id=%s\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n\n" % unit for unit in (
        "virtlogd.socket", "virtlogd.service", "libvirtd.socket", "libvirtd.service", "libvirtd-tls.socket",
        "libvirtd-tcp.socket"))
    runner = Runner(show=show)
    result = conf.run(_params(tmp_path / "etc-libvirt", service_mgr="systemd"), runner, True)
    assert result["changed"] and "start virtlogd.socket" in result["units"]
    assert any("virtlogd.socket is not installed yet" in w for w in result["warnings"])
    with pytest.raises(VirtforgeError):
        conf.run(_params(tmp_path / "etc-libvirt", service_mgr="systemd"), Runner(show=show), False)
