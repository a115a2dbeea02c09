# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""multipath's engine: the settings file, /etc/multipath.conf left alone, multipathd's state, the maps."""

from __future__ import annotations

import os

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _multipath as mp
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError

MAPS = "mpatha 36001405aabbccdd 2\n"
SHOW = "Id=multipathd.service\nLoadState=loaded\nActiveState={active}\nUnitFileState={file}\nMainPID=7\n"


class Runner(object):
    def __init__(self, running=True, show=None):
        self.running, self.show, self.calls = running, show, []

    def which(self, tool, required=True):
        return "/sbin/" + tool

    def run(self, argv, check=True, what=None, **_kw):
        self.calls.append([os.path.basename(argv[0])] + list(argv[1:]))
        tool = os.path.basename(argv[0])
        if tool == "pgrep":
            return (0, "7\n", "") if self.running else (1, "", "")
        if tool == "systemctl" and argv[1] == "show":
            return 0, self.show, ""
        if argv[1:3] == ["show", "maps"]:
            return 0, MAPS, ""
        return 0, "", ""

    def verbs(self):
        return [c for c in self.calls if c[0] != "pgrep" and c[:2] != ["systemctl", "show"]]


@pytest.fixture
def conf_d(tmp_path, monkeypatch):
    monkeypatch.setattr(mp, "CONF_D", str(tmp_path / "conf.d"))
    return tmp_path


def _params(tmp_path, **kw):
    params = dict(defaults={"user_friendly_names": True, "find_multipaths": "yes"}, blacklist=["^vd[a-z]+"],
                  conf_file=str(tmp_path / "conf.d" / "virtforge.conf"), start=True, service_mgr="direct")
    params.update(kw)
    return params


def test_the_file_is_rendered_as_multipathd_reads_it():
    assert mp.render({"user_friendly_names": True, "polling_interval": 5}, ["^vd[a-z]+"]) == (
        mp.HEADER + 'defaults {\n    user_friendly_names yes\n    polling_interval 5\n}\n'
        'blacklist {\n    devnode "^vd[a-z]+"\n}\n')


def test_bad_settings_are_all_named_at_once(conf_d):
    with pytest.raises(VirtforgeError) as err:
        mp.run(_params(conf_d, defaults={"Bad Key": 1, "find_multipaths": 'yes"\n}', "x": [1]},
                       blacklist=['^sd"a', ""]), Runner(), False)
    for part in ("defaults.Bad Key", "defaults.find_multipaths", "defaults.x", "blacklist[0]", "blacklist[1]"):
        assert part in err.value.message
    assert not os.path.exists(conf_d / "conf.d")


def test_conf_file_outside_conf_d_is_refused(conf_d):
    with pytest.raises(VirtforgeError) as err:
        mp.run(_params(conf_d, conf_file="/etc/multipath.conf"), Runner(), False)
    assert err.value.option == "conf_file"


def test_a_running_multipathd_rereads_changed_settings_and_a_rerun_changes_nothing(conf_d):
    main = conf_d / "multipath.conf"
    runner = Runner()
    first = mp.run(_params(conf_d), runner, False, main_conf=str(main))
    assert first["changed"] and first["config_changed"] and first["reconfigured"] and not first["started"]
    assert main.read_text().startswith("# Created by virtforge.libvirt")
    assert (conf_d / "conf.d" / "virtforge.conf").read_text() == mp.render(
        {"user_friendly_names": True, "find_multipaths": "yes"}, ["^vd[a-z]+"])
    assert ["multipathd", "reconfigure"] in runner.verbs()
    assert first["maps"] == [dict(name="mpatha", wwid="36001405aabbccdd", paths=2)]
    runner = Runner()
    second = mp.run(_params(conf_d), runner, False, main_conf=str(main))
    assert not second["changed"] and second["diff"] == [] and runner.verbs() == [
        ["multipathd", "show", "maps", "raw", "format", mp.MAPS_FORMAT]]


def test_an_existing_multipath_conf_is_never_rewritten(conf_d):
    main = conf_d / "multipath.conf"
    main.write_text("defaults {\n    polling_interval 10\n}\n")
    result = mp.run(_params(conf_d), Runner(), False, main_conf=str(main))
    assert main.read_text() == "defaults {\n    polling_interval 10\n}\n"
    assert [d["after_header"] for d in result["diff"]] == [str(conf_d / "conf.d" / "virtforge.conf")]


def test_check_mode_writes_nothing_and_starts_nothing(conf_d):
    runner = Runner(running=False)
    result = mp.run(_params(conf_d), runner, True, main_conf=str(conf_d / "multipath.conf"))
    assert result["changed"] and result["started"] and not result["reconfigured"]
    assert not os.path.exists(conf_d / "conf.d") and not os.path.exists(conf_d / "multipath.conf")
    assert [c for c in runner.verbs() if c[:2] != ["multipathd", "show"]] == []


def test_without_systemd_a_stopped_multipathd_is_started_not_reconfigured(conf_d):
    runner = Runner(running=False)
    result = mp.run(_params(conf_d), runner, False, main_conf=str(conf_d / "multipath.conf"))
    assert result["started"] and not result["reconfigured"]
    assert ["multipathd"] in runner.verbs() and ["multipathd", "reconfigure"] not in runner.verbs()


def test_systemd_enables_and_starts_it_in_one_show(conf_d):
    runner = Runner(show=SHOW.format(active="inactive", file="disabled"))
    result = mp.run(_params(conf_d, service_mgr="systemd"), runner, False, main_conf=str(conf_d / "multipath.conf"))
    assert result["units"] == ["enable multipathd.service", "start multipathd.service"] and result["started"]
    assert not result["reconfigured"]
    runner = Runner(show=SHOW.format(active="active", file="enabled"))
    again = mp.run(_params(conf_d, service_mgr="systemd"), runner, False, main_conf=str(conf_d / "multipath.conf"))
    assert not again["changed"] and again["units"] == []
    assert [c[1] for c in runner.calls if c[0] == "systemctl"] == ["show"]


def test_maps_parse_ignores_headers_and_noise():
    assert mp.parse_maps("name wwid paths\nmpatha 3600 2\nmpathb 3601 x\n") == [
        dict(name="mpatha", wwid="3600", paths=2)]


def test_a_value_with_spaces_is_quoted_and_comment_characters_are_refused(conf_d):
    assert mp.render({"features": "1 queue_if_no_path"}, []) == (
        mp.HEADER + 'defaults {\n    features "1 queue_if_no_path"\n}\n')
    with pytest.raises(VirtforgeError) as err:
        mp.run(_params(conf_d, defaults={"path_selector": "service-time 0 ! x"}), Runner(), False)
    assert "defaults.path_selector" in err.value.message


def test_check_mode_on_a_host_without_multipathd_plans_it_with_a_warning(conf_d):
    show = "Id=multipathd.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n"
    result = mp.run(_params(conf_d, service_mgr="systemd"), Runner(show=show), True,
                    main_conf=str(conf_d / "multipath.conf"))
    assert result["started"] and result["units"] == ["enable multipathd.service", "start multipathd.service"]
    assert result["warnings"] and result["maps"] == []
