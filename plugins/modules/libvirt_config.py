#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: libvirt_config
short_description: Settings in libvirtd.conf, qemu.conf and virtlogd.conf, and the daemons that read them
description:
  - Sets C(key = value) lines in libvirt's own configuration files, all files in one run. A setting replaces
    the last active line of its key; without one, the commented example the packages ship for it (C(#key = ...)),
    so each file keeps its layout and documentation; without either, it is appended. Lines the module is not
    asked about are never touched. A file is written under a temporary name and renamed, and keeps its mode
    and owner.
  - Brings the daemons to their state. Under B(systemd) - C(virtlogd.socket) and C(libvirtd.socket) enabled and
    listening, C(virtlogd) and C(libvirtd) enabled (both are socket-activated - virtlogd starts with the first
    guest after a boot and libvirtd exits when idle, so whether they run at this moment is not configuration),
    C(libvirtd-tls.socket) and C(libvirtd-tcp.socket) on or off as
    O(listen_tls) and O(listen_tcp) say (socket activation ignores C(listen_tls) and C(listen_tcp) in
    libvirtd.conf). One C(systemctl show) reads every unit, and only a change runs C(systemctl).
  - B(Without systemd) (containers, hosts run by another init) - a daemon that does not run is started with
    its own C(-d) (libvirtd with C(--listen) when it should listen on the network).
  - A running daemon started before its configuration file last changed still runs with the old settings.
    With O(restart) (systemd only) libvirtd is restarted (running guests keep running) and virtlogd is
    reloaded - it re-executes itself in place and keeps the log streams of running guests, which a restart
    would cut; the reload is recorded in C(/run/virtforge/libvirt_config.json) so the next run knows the
    daemon has read the file. Otherwise the daemon is listed in RV(restart_required). A daemon that is not
    running reads the new file when it starts, so it is not restarted.
  - systemd refuses to start a socket of a service that runs. When a libvirtd socket must start (O(listen_tls),
    O(listen_tcp)) while libvirtd runs, libvirtd is stopped, the sockets started and libvirtd started again
    (reported in RV(restarted)); with O(restart=false) that is refused before anything changes on the units.
version_added: 0.1.0
author:
  - virtforge.libvirt contributors (@virtforge)
options:
  settings:
    description:
      - Settings per file name in O(config_dir) (V(libvirtd.conf), V(qemu.conf), V(virtlogd.conf), or another
        C(*.conf) there), each a dict of C(key - value).
      - A boolean is written as V(1) or V(0), a number as it is, a string in double quotes, a list of strings as
        C(["a", "b"]). libvirt reads no escapes, so a string may not hold a double quote, a backslash or a
        newline. Keys are lower case letters, digits and C(_).
      - The first active line of a key is the one libvirt reads, and the one replaced (a list over several
        lines, whole); later duplicates are left as they are.
      - Changes to libvirtd.conf, qemu.conf, lxc.conf and libxl.conf concern C(libvirtd); to virtlogd.conf,
        C(virtlogd).
    type: dict
    default: {}
  listen_tls:
    description:
      - Whether libvirtd accepts TLS connections (port 16514). Written as C(listen_tls) in libvirtd.conf, and
        under systemd, C(libvirtd-tls.socket) enabled and listening (or disabled and stopped).
    type: bool
    default: false
  listen_tcp:
    description:
      - Whether libvirtd accepts TCP connections (port 16509), like O(listen_tls). Refused when the resulting
        libvirtd.conf sets C(auth_tcp = "none"), which would let anyone on the network control libvirtd in
        cleartext.
    type: bool
    default: false
  config_dir:
    description: The directory of libvirt's configuration files.
    type: path
    default: /etc/libvirt
  start:
    description: Start (and under systemd enable) the daemons as described above. V(false) leaves them as they are.
    type: bool
    default: true
  restart:
    description:
      - Restart a running daemon whose configuration is newer than the daemon (systemd only; without systemd it
        is reported in RV(restart_required)).
    type: bool
    default: true
  service_mgr:
    description:
      - How the daemons run. V(auto) - V(systemd) when C(/run/systemd/system) exists, else V(direct). V(none)
        writes the files only and does not look at the daemons.
    type: str
    choices: [auto, systemd, direct, none]
    default: auto
attributes:
  check_mode:
    support: full
    description:
      - Reports the files, units and daemons that would change; writes and runs nothing.
      - On a host where the daemons' units are not installed yet (the packages come from an earlier task that
        check mode did not run either), the units they would need are planned, with a warning.
  diff_mode:
    support: full
    description: Every changed file, before and after.
  idempotent:
    support: full
    description: Settings already in place and daemons already in their state report no change.
notes:
  - The host_build role runs this module for its C(host_build_libvirtd_settings), C(host_build_qemu_settings) and
    C(host_build_virtlogd_settings).
  - Hosts that run libvirt's modular daemons (C(virtqemud) and friends) instead of C(libvirtd) are not handled
    by the daemon part; set O(service_mgr=none) there and manage those units yourself.
seealso:
  - module: virtforge.libvirt.host_info
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: libvirtd for a management network over TLS, QEMU guests run as a dedicated user, logs kept small
  virtforge.libvirt.libvirt_config:
    listen_tls: true
    settings:
      libvirtd.conf:
        max_clients: 64
        unix_sock_group: libvirt
      qemu.conf:
        user: libvirt-qemu
        vnc_listen: 127.0.0.1
        cgroup_controllers: [cpu, cpuacct, cpuset, memory, blkio, devices]
      virtlogd.conf:
        max_size: 2097152
        max_backups: 3

- name: Write the files now, restart the daemons in a maintenance window
  virtforge.libvirt.libvirt_config:
    settings:
      qemu.conf: {security_driver: apparmor}
    restart: false
  register: libvirt_conf

- name: What still runs with the old settings
  ansible.builtin.debug:
    var: libvirt_conf.restart_required
"""

RETURN = r"""
config_changed:
  description: The files whose settings changed (or would, in check mode).
  returned: always
  type: list
  elements: str
  sample: [libvirtd.conf, qemu.conf]
daemons_changed:
  description: The daemons that read a changed file.
  returned: always
  type: list
  elements: str
  sample: [libvirtd]
service_mgr:
  description: V(systemd) or V(direct); null with O(service_mgr=none).
  returned: always
  type: str
  sample: systemd
units:
  description: The systemctl verbs run (or that would run) on units, in order.
  returned: always
  type: list
  elements: str
  sample: [enable virtlogd.socket, start virtlogd.socket]
started:
  description: Daemons that did not run and were started.
  returned: always
  type: list
  elements: str
restarted:
  description: Daemons restarted (virtlogd - reloaded in place) because their configuration is newer than them,
    or libvirtd stopped and started again around its sockets.
  returned: always
  type: list
  elements: str
restart_required:
  description: Running daemons whose configuration is newer than them, left running (O(restart=false), or no systemd).
  returned: always
  type: list
  elements: str
  sample: [libvirtd, virtlogd]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt_conf
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import exit_with_result, fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            settings=dict(type="dict", default={}),
            listen_tls=dict(type="bool", default=False),
            listen_tcp=dict(type="bool", default=False),
            config_dir=dict(type="path", default="/etc/libvirt"),
            start=dict(type="bool", default=True),
            restart=dict(type="bool", default=True),
            service_mgr=dict(type="str", choices=["auto", "systemd", "direct", "none"], default="auto"),
        ),
        supports_check_mode=True,
    )
    try:
        result = _libvirt_conf.run(module.params, Runner(module), module.check_mode)
    except Exception as exc:
        fail_from_exception(module, exc)
    exit_with_result(module, result)


if __name__ == "__main__":
    main()
