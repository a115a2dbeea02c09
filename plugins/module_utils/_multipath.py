# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dm-multipath: a settings file of the collection's own, multipathd running, the maps it made.

The settings go in one file under /etc/multipath/conf.d (multipathd reads it after /etc/multipath.conf); an
existing /etc/multipath.conf is never rewritten, one with an empty ``defaults`` section is made where there
is none (multipathd on RHEL-family hosts wants one). A running multipathd re-reads changed settings
(``multipathd reconfigure``).
"""

from __future__ import annotations

import os
import re

from . import _service
from ._errors import VirtforgeError
from ._image.common import atomic_write_text, read_text

CONF_D = "/etc/multipath/conf.d"
MAIN_CONF = "/etc/multipath.conf"
DEFAULT_FILE = CONF_D + "/virtforge.conf"
KEY_RE = re.compile(r"^[a-z][a-z_]*$")
BAD_VALUE = re.compile(r'["{}#!\n]')   # ! and # start comments
HEADER = "# Managed by virtforge.libvirt (multipath): changes here are overwritten.\n"
MAIN_TEXT = ("# Created by virtforge.libvirt (multipath); its settings are in %s.\n"
             "defaults {\n}\n")
MAPS_FORMAT = "%n %w %N"


def plain_value(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_value(value):
    """A value as multipath.conf reads it: booleans as yes/no, a value with spaces in double quotes
    (``features "1 queue_if_no_path"``)."""
    text = plain_value(value)
    return '"%s"' % text if re.search(r"\s", text) else text


def validate(defaults, blacklist):
    """Every bad key, value and pattern at once, each named by its option."""
    errors = []
    for key, value in (defaults or {}).items():
        if not KEY_RE.match(str(key)):
            errors.append("defaults.%s: not a multipath.conf setting name (lower case letters and _)" % key)
        elif (isinstance(value, (dict, list, tuple)) or value is None or BAD_VALUE.search(plain_value(value))
              or not plain_value(value).strip()):
            errors.append("defaults.%s: one value without quotes, braces, # or ! (e.g. \"yes\" or 5)" % key)
    for index, pattern in enumerate(blacklist or []):
        if not isinstance(pattern, str) or not pattern or '"' in pattern or "\n" in pattern:
            errors.append("blacklist[%d]: a devnode regular expression without double quotes" % index)
    if errors:
        raise VirtforgeError("; ".join(errors))


def render(defaults, blacklist):
    lines = [HEADER.rstrip("\n"), "defaults {"]
    lines += ["    %s %s" % (key, render_value(value)) for key, value in defaults.items()]
    lines.append("}")
    if blacklist:
        lines.append("blacklist {")
        lines += ['    devnode "%s"' % pattern for pattern in blacklist]
        lines.append("}")
    return "\n".join(lines) + "\n"


def parse_maps(text):
    """``multipathd show maps raw format "%n %w %N"``: [{name, wwid, paths}]."""
    maps = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].isdigit():
            maps.append(dict(name=fields[0], wwid=fields[1], paths=int(fields[2])))
    return maps


def run(params, runner, check_mode, main_conf=None):
    main_conf = main_conf or MAIN_CONF
    defaults = dict(params.get("defaults") or {})
    blacklist = list(params.get("blacklist") or [])
    path = params["conf_file"]
    if os.path.dirname(path) != CONF_D or not path.endswith(".conf"):
        raise VirtforgeError("%s is not a .conf file in %s" % (path, CONF_D), "conf_file",
                             fix="multipathd reads only %s/*.conf besides /etc/multipath.conf" % CONF_D)
    validate(defaults, blacklist)
    files = []   # (path, before or None, after)
    if not os.path.exists(main_conf):
        files.append((main_conf, None, MAIN_TEXT % path))
    after = render(defaults, blacklist)
    before = read_text(path)
    if before != after:
        files.append((path, before, after))
    if not check_mode:
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path), 0o755)
        for target, _before, text in files:
            atomic_write_text(target, text, 0o644)
    config_changed = bool(files)

    systemd = _service.uses_systemd(params["service_mgr"])
    units, started, reconfigured, warnings = [], False, False, []
    if systemd:
        systemctl = _service.Systemctl(runner)
        states = systemctl.show(["multipathd.service"])
        actions, warnings = _service.unit_actions(
            states, [("multipathd.service", True, True)] if params["start"] else [], check_mode)
        units = systemctl.apply(actions, check_mode)
        started = ("start", "multipathd.service") in actions
        running = _service.is_active(states["multipathd.service"]) or started
    else:
        running = bool(_service.pgrep(runner, "multipathd"))
        if not running and params["start"]:
            started = running = True
            if not check_mode:
                runner.run([runner.which("multipathd")], what="multipathd")
    multipathd = runner.which("multipathd", required=not check_mode)
    # a multipathd that started in this run read the new settings; one that ran before re-reads them
    if config_changed and running and not started:
        reconfigured = True
        if not check_mode:
            runner.run([multipathd, "reconfigure"], what="multipathd reconfigure")
    maps = []
    if multipathd and running and not (check_mode and started):
        rc, out, _err = runner.run([multipathd, "show", "maps", "raw", "format", MAPS_FORMAT], check=False)
        maps = parse_maps(out) if rc == 0 else []
    return dict(
        changed=bool(config_changed or units or started or reconfigured),
        config_changed=config_changed, conf_file=path, units=units, started=started, reconfigured=reconfigured,
        service_mgr="systemd" if systemd else "direct", maps=maps, warnings=warnings,
        diff=[dict(before_header=target, after_header=target, before=before or "", after=text)
              for target, before, text in files])
