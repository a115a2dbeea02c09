# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain engine: option groups (groups.py, devices.py), the domain document spec (spec.py)
and the manager that runs plans, state changes and batches over one connection (manager.py)."""

from __future__ import annotations
