# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host networking for hypervisor hosts: bridges, bonds and VLANs.

* :mod:`.model`     options, validation and the canonical interface model
* :mod:`.provider`  the Provider interface, step execution and provider detection
* :mod:`.iproute2`, :mod:`.ifupdown`, :mod:`.networkmanager`  the three providers
* :mod:`.safe`      safe apply: snapshot, detached rollback watchdog, verification, stale rollbacks
* :mod:`.manager`   one module run: validate, read, plan, (check mode stops), arm, apply, verify, disarm
"""
