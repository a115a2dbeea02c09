#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: multipath
short_description: dm-multipath settings of the collection's own, multipathd running, and the maps it made
description:
  - Writes the C(defaults) and C(blacklist) sections asked for into a file of their own in
    C(/etc/multipath/conf.d) (multipathd reads it after C(/etc/multipath.conf)), under a temporary name that is
    renamed when complete. An existing C(/etc/multipath.conf) is never rewritten; where there is none, one with
    an empty C(defaults) section is made (multipathd on RHEL-family hosts wants one).
  - Brings multipathd up - under B(systemd) C(multipathd.service) enabled and running (one C(systemctl show)
    reads it, C(systemctl) runs only for a change), elsewhere started directly when it does not run.
  - A multipathd that was already running re-reads changed settings (C(multipathd reconfigure)); one started
    in this run read them when it started.
  - Reports the maps multipathd has made - one device per LUN, however many paths (SAN fabrics, iSCSI portals)
    lead to it.
  - The package (C(multipath-tools) on Debian/Ubuntu, C(device-mapper-multipath) on RHEL/Fedora) must be
    installed; the host_build role installs it.
version_added: 0.1.0
author:
  - virtforge.libvirt contributors (@virtforge)
options:
  defaults:
    description:
      - Settings of the C(defaults) section, C(key - value) (V(find_multipaths), V(user_friendly_names),
        V(polling_interval)...). A boolean is written V(yes)/V(no), a value with spaces in double quotes
        (C(features "1 queue_if_no_path")). One value each, without quotes, braces, C(#) or C(!).
    type: dict
    default: {user_friendly_names: "yes", find_multipaths: "yes"}
  blacklist:
    description:
      - C(devnode) regular expressions of devices multipath leaves alone (the disks of the host's own system,
        virtio disks V(^vd[a-z]+)).
    type: list
    elements: str
    default: []
  conf_file:
    description: The settings file; a C(.conf) file in C(/etc/multipath/conf.d). It is the module's own - edits made
      to it by hand are overwritten.
    type: path
    default: /etc/multipath/conf.d/virtforge.conf
  start:
    description: Start (and under systemd enable) multipathd. V(false) leaves it as it is.
    type: bool
    default: true
  service_mgr:
    description: How multipathd runs; V(auto) - V(systemd) when C(/run/systemd/system) exists, else V(direct).
    type: str
    choices: [auto, systemd, direct]
    default: auto
attributes:
  check_mode:
    support: full
    description:
      - Reports the files and unit changes it would make, and whether multipathd would re-read them.
      - Where multipathd is not installed yet (its package comes from an earlier task), its unit is planned,
        with a warning.
  diff_mode:
    support: full
    description: The files written, before and after.
  idempotent:
    support: full
    description: The same settings and a running multipathd report no change.
seealso:
  - module: virtforge.libvirt.pool
  - module: virtforge.libvirt.domain_device
"""

EXAMPLES = r"""
- name: One device per SAN LUN, the host's virtio disks left alone
  virtforge.libvirt.multipath:
    defaults:
      user_friendly_names: true
      find_multipaths: "yes"
      polling_interval: 5
    blacklist: ["^vd[a-z]+"]
  register: mpath

- name: The maps
  ansible.builtin.debug:
    msg: "{{ item.name }} ({{ item.wwid }}) over {{ item.paths }} paths"
  loop: "{{ mpath.maps }}"
"""

RETURN = r"""
config_changed:
  description: Whether a settings file was written (or would be, in check mode).
  returned: always
  type: bool
conf_file:
  description: The settings file.
  returned: always
  type: str
  sample: /etc/multipath/conf.d/virtforge.conf
units:
  description: The systemctl verbs run on C(multipathd.service) (or that would run, in check mode).
  returned: always
  type: list
  elements: str
  sample: [enable multipathd.service, start multipathd.service]
started:
  description: Whether multipathd was started.
  returned: always
  type: bool
reconfigured:
  description: Whether a running multipathd was told to re-read its settings.
  returned: always
  type: bool
service_mgr:
  description: V(systemd) or V(direct).
  returned: always
  type: str
maps:
  description: The multipath maps (none before multipathd runs).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The map's name (C(mpatha) with user_friendly_names, else the WWID).
      type: str
    wwid:
      description: The LUN's WWID.
      type: str
    paths:
      description: How many paths lead to it.
      type: int
  sample: [{name: mpatha, wwid: 36001405aabbccdd, paths: 2}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _multipath
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import exit_with_result, fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            defaults=dict(type="dict", default={"user_friendly_names": "yes", "find_multipaths": "yes"}),
            blacklist=dict(type="list", elements="str", default=[]),
            conf_file=dict(type="path", default=_multipath.DEFAULT_FILE),
            start=dict(type="bool", default=True),
            service_mgr=dict(type="str", choices=["auto", "systemd", "direct"], default="auto"),
        ),
        supports_check_mode=True,
    )
    try:
        result = _multipath.run(module.params, Runner(module), module.check_mode)
    except Exception as exc:
        fail_from_exception(module, exc)
    exit_with_result(module, result)


if __name__ == "__main__":
    main()
