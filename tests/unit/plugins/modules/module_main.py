"""Running a module's main() in-process: exit_json and fail_json captured, check and diff mode flags set,
and the result checked to serialize as a module result must."""

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class Exit(Exception):
    pass


def main_outcome(monkeypatch, module, args, check_mode=False, diff=False):
    """``module.main()`` with ``args``; returns what it exited or failed with, plus ``failed``."""
    outcome = {}

    def exit_json(self, **kwargs):
        outcome.update(kwargs, failed=False)
        raise Exit()

    def fail_json(self, **kwargs):
        outcome.update(kwargs, failed=True)
        raise Exit()

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args), pytest.raises(Exit):
        module.main()
    json.dumps(outcome)  # a module result must serialize
    return outcome
