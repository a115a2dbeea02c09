# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt's own configuration files (key = value) and the daemons that read them.

One module run edits every file and brings the daemons to their state: under systemd through one
``systemctl show`` for all units and one ``systemctl`` call per change, elsewhere by starting the daemons
directly (_service). A running daemon whose file changed after it started is restarted (systemd, when
allowed) or reported in ``restart_required``.
"""

from __future__ import annotations

import json
import os
import re
import time

from . import _service
from ._errors import VirtforgeError
from ._image.common import atomic_write_text, read_json, read_text

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
FILE_RE = re.compile(r"^[a-z][a-z0-9_-]*\.conf$")
# which daemon reads which file (files not listed here are written, no daemon is restarted for them)
FILE_DAEMON = {
    "libvirtd.conf": "libvirtd",
    "qemu.conf": "libvirtd",
    "lxc.conf": "libvirtd",
    "libxl.conf": "libvirtd",
    "virtlogd.conf": "virtlogd",
}
DAEMONS = ("virtlogd", "libvirtd")
RUNTIME_DIRS = ("/var/log/libvirt", "/run/libvirt")
# daemons reloaded in place (same pid) and when: their start time no longer tells whether they read a file
STATE_FILE = "/run/virtforge/libvirt_config.json"


# ---------------------------------------------------------------------------------------------- the files

def render_value(value, option):
    """A setting's value as libvirt's configuration parser reads it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise VirtforgeError("%r is a fraction; libvirt's settings take whole numbers" % value, option)
    if isinstance(value, str):
        if '"' in value or "\n" in value or "\\" in value:
            raise VirtforgeError("the value may not hold a double quote, a backslash or a newline", option)
        return '"%s"' % value
    if isinstance(value, (list, tuple)):
        for index, element in enumerate(value):
            if not isinstance(element, str):
                raise VirtforgeError("a list setting holds strings only", "%s[%d]" % (option, index))
            render_value(element, "%s[%d]" % (option, index))
        # libvirt reads no escapes inside strings: each element as it is, in double quotes (as above)
        return "[%s]" % ", ".join('"%s"' % element for element in value)
    raise VirtforgeError("a setting is a number, a boolean, a string or a list of strings, not %s"
                         % type(value).__name__, option)


def line_for(key, value, option):
    return "%s = %s" % (key, render_value(value, option))


def set_line(text, key, line):
    """``text`` with ``key`` set by ``line``.

    libvirt's parser takes the first active line of a key, so that one is replaced (a list written over
    several lines as a whole, up to its closing bracket); later duplicates, which libvirt ignores, are left as
    they are. Without an active line, the last commented example of the key is replaced (the packages' files
    document every setting as ``#key = value``), so the file keeps its layout; without either, the line is
    appended.
    """
    lines = text.splitlines()
    active = re.compile(r"^\s*%s\s*=" % re.escape(key))
    example = re.compile(r"^\s*#\s*%s\s*=" % re.escape(key))
    target = next((index for index, current in enumerate(lines) if active.match(current)), None)
    end = target
    if target is not None:
        value = lines[target].split("=", 1)[1]
        if value.strip().startswith("[") and "]" not in value:
            end = next((index for index in range(target + 1, len(lines)) if "]" in lines[index]), len(lines) - 1)
    else:
        for index, current in enumerate(lines):
            if example.match(current):
                target = end = index
    if target is None:
        lines.append(line)
    else:
        lines[target:end + 1] = [line]
    return "\n".join(lines) + "\n"


def effective(text, key):
    """The raw value text of the first active line for ``key`` (the one libvirt reads), or None."""
    pattern = re.compile(r"^\s*%s\s*=\s*(.*?)\s*$" % re.escape(key))
    for current in text.splitlines():
        match = pattern.match(current)
        if match:
            return match.group(1)
    return None


def validate_settings(settings):
    """Checks every file name, key and value, all at once; returns {file: {key: line}}."""
    out = {}
    errors = []
    for name, values in (settings or {}).items():
        option = "settings.%s" % name
        if not FILE_RE.match(str(name)):
            errors.append("%s: not a libvirt configuration file name (e.g. libvirtd.conf, qemu.conf)" % option)
            continue
        if not isinstance(values, dict):
            errors.append("%s: must be a dict of setting: value" % option)
            continue
        out[name] = {}
        for key, value in values.items():
            key_option = "%s.%s" % (option, key)
            if not KEY_RE.match(str(key)):
                errors.append("%s: not a setting name (lower case letters, digits and _)" % key_option)
                continue
            try:
                out[name][key] = line_for(key, value, key_option)
            except VirtforgeError as exc:
                errors.append(exc.message)
    if errors:
        raise VirtforgeError("; ".join(errors))
    return out


def plan_files(config_dir, lines):
    """[{file, path, before, after, exists}] for every file ``lines`` names, in name order."""
    plan = []
    for name in sorted(lines):
        path = os.path.join(config_dir, name)
        text = read_text(path)
        exists, before = text is not None, text or ""
        after = before
        for key, line in lines[name].items():
            after = set_line(after, key, line)
        if after.splitlines() == before.splitlines():
            after = before   # no setting changed: a missing final newline or CRLF endings are not a change
        plan.append(dict(file=name, path=path, before=before, after=after, exists=exists))
    return plan


def write_file(path, text):
    """Written under a temporary name and renamed; an existing file keeps its mode and owner."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise VirtforgeError("the directory %s does not exist" % directory, "config_dir",
                             fix="Install libvirt first, or point config_dir at its configuration directory")
    atomic_write_text(path, text, 0o644, keep_owner=True)


# ---------------------------------------------------------------------------------------------- the daemons

def read_reloads(path=None):
    """{daemon: {pid, at}}: daemons this module reloaded in place (virtlogd re-executes itself, same pid)."""
    data = read_json(path or STATE_FILE)
    return data if isinstance(data, dict) else {}


def record_reload(daemon, pid, path=None):
    path = path or STATE_FILE
    data = read_reloads(path)
    data[daemon] = dict(pid=pid, at=time.time())
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    atomic_write_text(path, json.dumps(data), 0o644)


def stale_daemons(pids, plan, changed_daemons):
    """Running daemons that started (or were reloaded) before their configuration last changed, or whose
    configuration changes now."""
    reloads = read_reloads()
    out = []
    for daemon, pid in sorted(pids.items()):
        if not pid:
            continue
        started = _service.process_start_time(pid)
        if started is None:
            continue
        reload = reloads.get(daemon) or {}
        if reload.get("pid") == pid:
            started = max(started, float(reload.get("at", 0)))
        for item in plan:
            if FILE_DAEMON.get(item["file"]) != daemon:
                continue
            newer = item["exists"] and _service.older_than(started, os.path.getmtime(item["path"]))
            if newer or daemon in changed_daemons:
                out.append(daemon)
                break
    return out


def converge_systemd(params, runner, changed_daemons, plan, check_mode):
    """virtlogd, libvirtd's socket and service, the TLS/TCP sockets as systemd units."""
    wanted = []
    if params["start"]:
        wanted = [
            # both daemons are socket-activated: their sockets listen and are enabled; whether a daemon runs at
            # this moment is not configuration (virtlogd starts with the first guest after a boot, libvirtd exits
            # after two idle minutes), so the services are only enabled (libvirtd's starts at boot to
            # autostart guests)
            ("virtlogd.socket", True, True),
            ("virtlogd.service", True, None),
            ("libvirtd.socket", True, True),
            ("libvirtd.service", True, None),
            ("libvirtd-tls.socket", params["listen_tls"], params["listen_tls"]),
            ("libvirtd-tcp.socket", params["listen_tcp"], params["listen_tcp"]),
        ]
    units = list(dict.fromkeys([u for u, _e, _a in wanted] + ["%s.service" % d for d in DAEMONS]))
    systemctl = _service.Systemctl(runner)
    states = systemctl.show(units)
    actions, warnings = _service.unit_actions(states, wanted, check_mode)
    # systemd refuses to start a socket whose service runs ("already active, refusing"): libvirtd stops for
    # the sockets to start, then starts again (libvirt's documented order), which is its restart
    sockets = [unit for verb, unit in actions if verb == "start" and unit.startswith("libvirtd")
               and unit.endswith(".socket")]
    cycled = bool(sockets) and _service.is_active(states["libvirtd.service"])
    if cycled:
        if not params["restart"]:
            raise VirtforgeError("%s cannot start while libvirtd runs, and restart is false" % ", ".join(sockets),
                                 "restart", fix="Allow the restart (libvirtd stops, its sockets start, it starts "
                                 "again; running guests keep running), or stop libvirtd.service first")
        actions = [("stop", "libvirtd.service")] + actions + [("start", "libvirtd.service")]
    done = systemctl.apply(actions, check_mode)
    pids = dict((d, _service.main_pid(states["%s.service" % d])) for d in DAEMONS)
    stale = [d for d in stale_daemons(pids, plan, changed_daemons) if not (cycled and d == "libvirtd")]
    restarted = ["libvirtd"] if cycled else []
    if params["restart"]:
        for daemon in stale:
            if daemon == "virtlogd":
                # a restart would cut the log streams of running guests: virtlogd re-executes itself in place
                # on reload (SIGUSR1), keeping them, and reads its configuration again
                done += systemctl.apply([("reload", "virtlogd.service")], check_mode)
                if not check_mode:
                    record_reload("virtlogd", pids["virtlogd"])
            else:
                done += systemctl.apply([("restart", "%s.service" % daemon)], check_mode)
        restarted, stale = sorted(set(restarted + stale)), []
    # the services are only enabled (socket activation starts them), so none is started here
    return dict(units=done, started=[], restarted=restarted, restart_required=stale, warnings=warnings)


def converge_direct(params, runner, changed_daemons, plan, check_mode):
    """Hosts without systemd: a daemon that does not run is started by its own ``-d``; none is restarted."""
    pids = dict((d, _service.pgrep(runner, d)) for d in DAEMONS)
    started = []
    if params["start"]:
        for daemon in DAEMONS:
            if pids[daemon]:
                continue
            started.append(daemon)
            if check_mode:
                continue
            for directory in RUNTIME_DIRS:
                if not os.path.isdir(directory):
                    os.makedirs(directory, 0o755)
            argv = [runner.which(daemon), "-d"]
            if daemon == "libvirtd" and (params["listen_tls"] or params["listen_tcp"]):
                argv.append("--listen")
            runner.run(argv, what="%s -d" % daemon)
    # killing a daemon something else started (a container's entry point) is not this module's call: a running
    # daemon with a newer configuration is reported
    return dict(units=[], started=started, restarted=[],
                restart_required=stale_daemons(pids, plan, changed_daemons), warnings=[])


# ---------------------------------------------------------------------------------------------- the run

def run(params, runner, check_mode):
    settings = dict(params.get("settings") or {})
    libvirtd = dict(settings.get("libvirtd.conf") or {})
    for key in ("listen_tls", "listen_tcp"):
        if key in libvirtd and bool(libvirtd[key]) != params[key]:
            raise VirtforgeError("settings.libvirtd.conf.%s differs from the option %s" % (key, key), key,
                                 fix="Set it once, with the %s option" % key)
        libvirtd[key] = params[key]
    settings["libvirtd.conf"] = libvirtd
    lines = validate_settings(settings)
    plan = plan_files(params["config_dir"], lines)
    for item in plan:
        if item["file"] == "libvirtd.conf" and params["listen_tcp"] and effective(item["after"], "auth_tcp") in (
                '"none"', "'none'"):
            raise VirtforgeError("auth_tcp \"none\" with listen_tcp would let anyone on the network control libvirtd "
                                 "in cleartext", "listen_tcp",
                                 fix="Set settings.libvirtd.conf.auth_tcp to sasl, or use listen_tls instead")
    changed_files = [item for item in plan if item["after"] != item["before"]]
    changed_daemons = sorted({FILE_DAEMON[i["file"]] for i in changed_files if i["file"] in FILE_DAEMON})
    if not check_mode:
        for item in changed_files:
            write_file(item["path"], item["after"])
    result = dict(config_changed=[i["file"] for i in changed_files], daemons_changed=changed_daemons,
                  service_mgr=None, units=[], started=[], restarted=[], restart_required=[])
    if params["service_mgr"] != "none":
        systemd = _service.uses_systemd(params["service_mgr"])
        result["service_mgr"] = "systemd" if systemd else "direct"
        converge = converge_systemd if systemd else converge_direct
        result.update(converge(params, runner, changed_daemons, plan, check_mode))
    result["changed"] = bool(changed_files or result["units"] or result["started"] or result["restarted"])
    result["diff"] = [dict(before_header=i["path"], after_header=i["path"], before=i["before"], after=i["after"])
                      for i in changed_files]
    return result
