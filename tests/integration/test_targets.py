"""Run every integration target (tests/integration/targets/*) as a playbook against the lab."""

import os

import pytest

from conftest import ROOT, run_playbook

TARGETS_DIR = os.path.join(ROOT, "tests", "integration", "targets")


def targets():
    found = []
    for name in sorted(os.listdir(TARGETS_DIR)):
        if not os.path.exists(os.path.join(TARGETS_DIR, name, "tasks", "main.yml")):
            continue
        aliases = set()
        alias_file = os.path.join(TARGETS_DIR, name, "aliases")
        if os.path.exists(alias_file):
            with open(alias_file) as handle:
                aliases = {line.strip() for line in handle if line.strip() and not line.startswith("#")}
        if "disabled" in aliases:
            continue
        # alias "conversion": the slow P2V/V2V/V2P targets, selected with -m conversion
        # alias "exclusive": restarts the lab's libvirtd, so it runs alone (-m exclusive) before make test's lanes
        marks = [pytest.mark.conversion] if "conversion" in aliases else []
        marks += [pytest.mark.exclusive] if "exclusive" in aliases else []
        found.append(pytest.param(name, marks=marks, id=name))
    return found


@pytest.mark.parametrize("target", targets())
def test_target(lab, target):
    proc = run_playbook(os.path.join(ROOT, "tests", "integration", "run_target.yml"), dict(lab, vf_target=target))
    if proc.returncode != 0:
        pytest.fail("target %s failed (rc=%d)\n--- the task that ended it:\n%s\n--- the end of the output:\n%s\n%s"
                    % (target, proc.returncode, last_failure(proc.stdout), proc.stdout[-20000:],
                       proc.stderr[-5000:]))


def last_failure(stdout, after=40):
    """The last TASK header with its failure, so it leads the report (targets also fail tasks on purpose)."""
    lines = stdout.splitlines()
    failed = [n for n, line in enumerate(lines) if line.startswith(("fatal:", "failed:")) or "FAILED!" in line]
    if not failed:
        return "(no failed task in the output)"
    last = failed[-1]
    start = next((n for n in range(last, -1, -1) if lines[n].startswith("TASK [")), max(0, last - 5))
    return "\n".join(lines[start:last + after])


def test_there_are_targets():
    assert len(targets()) >= 1, "no integration targets found"
