# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lists of objects in one task: ``volumes:``, ``images:``.

A module that handles one object per task (its engine reads ``module.params``) gets a list
option for free: each item is validated like the module's own options (top-level values are
shared defaults, an item's own value wins), every item is **planned before any is applied**,
and the engine sees each item through an :class:`ItemView` of the module — same check mode,
diff mode, run_command and warnings, its own ``params``.
"""

from __future__ import annotations

import copy

from ._errors import VirtforgeError


class ItemView(object):
    """The module as one item of a batch sees it."""

    def __init__(self, module, params):
        self._module = module
        self.params = params

    def __getattr__(self, name):
        return getattr(self._module, name)


def item_spec(argument_spec, exclude=()):
    """The options one item takes: the module's own, without the list option and connection options,
    with nothing required (requirements are checked on the merged item) and no defaults (so that a
    top-level value can be told apart from a default)."""
    spec = {}
    for key, value in argument_spec.items():
        if key in exclude:
            continue
        value = copy.deepcopy(value)
        value.pop("required", None)
        value.pop("default", None)
        spec[key] = value
    return spec


def expand(module, list_option, argument_spec, required=(), not_shared=(), exclude=("uri",)):
    """Validated parameter dicts, one per item of ``module.params[list_option]``.

    Top-level options the user set (not None) are defaults for every item, except ``not_shared``
    (identity options such as ``name``). Defaults of the spec apply last. Raises VirtforgeError
    naming ``list_option[i].option`` for the first bad item, before anything is changed.
    """
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    items = module.params.get(list_option)
    if items is None:
        return None
    exclude = set(exclude) | {list_option}
    spec = item_spec(argument_spec, exclude)
    shared = {k: v for k, v in module.params.items()
              if k in spec and k not in not_shared and v is not None and v != argument_spec[k].get("default")}
    out = []
    for index, item in enumerate(items):
        where = "%s[%d]" % (list_option, index)
        if not isinstance(item, dict):
            raise VirtforgeError("each item must be a dictionary of the module's options", option=where)
        unknown = sorted(set(item) - set(spec))
        if unknown:
            raise VirtforgeError("unknown option(s) %s" % ", ".join(unknown), option=where,
                                 fix="Items take the module's own options (%s)" % ", ".join(sorted(spec)))
        merged = dict(copy.deepcopy(shared), **item)
        result = ArgumentSpecValidator(spec).validate(merged)
        if result.error_messages:
            raise VirtforgeError("; ".join(result.error_messages), option=where)
        params = result.validated_parameters
        for key, value in argument_spec.items():
            if key in spec and params.get(key) is None and "default" in value:
                params[key] = copy.deepcopy(value["default"])
        for key in exclude:
            params[key] = module.params.get(key) if key != list_option else None
        for key in required:
            if params.get(key) is None:
                raise VirtforgeError("is required", option="%s.%s" % (where, key))
        out.append(params)
    return out


def run_batch(module, items, plan_fn, apply_fn, result_fn, list_option=None, label_key="name"):
    """Plan every item, then (unless check mode) apply the changed ones; one result per item.

    ``plan_fn(view)`` returns a plan with a ``changed`` attribute; ``apply_fn(view, plan)`` applies it;
    ``result_fn(view, plan)`` returns the item's result dict. With ``list_option`` (the items came
    from a list), an error names the item: ``volumes[1].pool: web2.qcow2: ...``.
    """
    planned = []
    for index, params in enumerate(items):
        view = ItemView(module, params)
        try:
            planned.append((view, plan_fn(view)))
        except VirtforgeError as exc:
            if list_option:
                where = "%s[%d]" % (list_option, index)
                exc.option = "%s.%s" % (where, exc.option) if exc.option else where
                exc.msg = "%s: %s" % (params.get(label_key) or "item %d" % index, exc.msg)
            raise
    results = []
    for view, plan in planned:
        if plan.changed and not module.check_mode:
            apply_fn(view, plan)
        results.append(result_fn(view, plan))
    return results
