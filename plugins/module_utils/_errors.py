# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the collection's engines, and the one place that turns them into fail_json."""

from __future__ import annotations

import traceback


class VirtforgeError(Exception):
    """An error the user can act on.

    ``option`` names the module option at fault (dotted for sub-options, e.g.
    ``disks[1].size``); ``fix`` says what to do about it. Both end up in the message.
    """

    def __init__(self, msg, option=None, fix=None, **details):
        self.msg = msg
        self.option = option
        self.fix = fix
        self.details = details
        super().__init__(self.message)

    @property
    def message(self):
        text = self.msg
        if self.option:
            text = "%s: %s" % (self.option, text)
        if self.fix:
            text = "%s. %s" % (text.rstrip("."), self.fix)
        return text


class NotFound(VirtforgeError):
    """The object looked up does not exist."""


def fail_from_exception(module, exc, **result):
    """Fail the module with a clean message for a known error, a full traceback otherwise."""
    if isinstance(exc, VirtforgeError):
        if exc.option:
            result.setdefault("option", exc.option)
        result.update(exc.details)
        module.fail_json(msg=exc.message, **result)
    libvirt_error = _libvirt_error_class()
    if libvirt_error is not None and isinstance(exc, libvirt_error):
        module.fail_json(msg="libvirt: %s" % exc.get_error_message(), error_code=exc.get_error_code(), **result)
    module.fail_json(msg="%s: %s" % (type(exc).__name__, exc), exception=traceback.format_exc(), **result)


def exit_with_result(module, result):
    """Exit with an engine's result: its ``warnings`` as Ansible warnings, its ``diff`` only in diff mode."""
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        result["diff"] = diff
    module.exit_json(**result)


def _libvirt_error_class():
    try:
        import libvirt  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return libvirt.libvirtError
