# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  uri:
    description:
      - libvirt connection URI.
      - When not set, the E(LIBVIRT_DEFAULT_URI) environment variable is used, and when that is
        not set either, V(qemu:///system).
      - Set it once for all modules of the collection with the C(group/virtforge.libvirt.libvirt)
        module defaults group (see the README).
    type: str
requirements:
  - libvirt-python
  - lxml
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Computes the same plan as a real run and stops before applying it.
  diff_mode:
    support: full
    description: Shows the definition before and after the change.
"""
