"""The collection's molecule scenarios (extensions/molecule/*), run with `molecule test` against the lab.

kvm_host: a Debian guest with three NICs, made by the collection's own create playbook, is converged
into a KVM host by host_build (bond, bridge, VLAN, pool, networks), once per persistent network
provider selected. Molecule's own steps (syntax, idempotence) run as well as the scenario's checks.
"""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import LAB_DIR, ROOT

SCENARIOS = os.path.join(ROOT, "extensions")


def host_image():
    path = os.path.join(LAB_DIR, "kvmhost.json")
    if not os.path.exists(path):
        pytest.fail("%s is missing: run tests/lab/golden-image.sh --host (make host-image) first" % path)
    with open(path) as handle:
        return json.load(handle)["path"]


# each provider's run has its own guest, MACs, trunk network and Molecule state: they may run side by side
RUNS = dict(
    ifupdown=dict(VF_MOLECULE_INSTANCE="vfm-kvmhost-ifu", VF_MOLECULE_MAC_PREFIX="52:54:00:7e:11",
                  VF_MOLECULE_TRUNK="vfm-trunk-ifu", VF_MOLECULE_TRUNK_BRIDGE="vfmtrunk-ifu",
                  VF_MOLECULE_TRUNK_PREFIX="10.254.7"),
    networkmanager=dict(VF_MOLECULE_INSTANCE="vfm-kvmhost-nm", VF_MOLECULE_MAC_PREFIX="52:54:00:7e:12",
                        VF_MOLECULE_TRUNK="vfm-trunk-nm", VF_MOLECULE_TRUNK_BRIDGE="vfmtrunk-nm",
                        VF_MOLECULE_TRUNK_PREFIX="10.254.8"),
)


# both persistent providers by default (make test-molecule); .ci/run gives each lane one provider
PROVIDERS = [p for p in os.environ.get("VF_MOLECULE_PROVIDERS", "ifupdown,networkmanager").split(",") if p]


def test_providers_are_known():
    assert PROVIDERS and set(PROVIDERS) <= set(RUNS), "VF_MOLECULE_PROVIDERS: choose from %s" % sorted(RUNS)


@pytest.mark.molecule
@pytest.mark.parametrize("provider", PROVIDERS)
def test_kvm_host(lab, provider):
    env = dict(os.environ)
    env.update(RUNS[provider])
    env.update(
        MOLECULE_EPHEMERAL_DIRECTORY=os.path.join(ROOT, ".build", "molecule", "kvm_host-" + provider),
        VF_MOLECULE_IMAGE=host_image(),
        VF_MOLECULE_POOL=lab["vf_lab_pool"],
        VF_MOLECULE_NETWORK=lab["vf_lab_network"],
        VF_MOLECULE_NETNS=lab["vf_lab_ns"],
        VF_MOLECULE_NET_PROVIDER=provider,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
        PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + env.get("PATH", ""),
    )
    # the scenario's own ansible.cfg (molecule writes one) applies, not the tests'
    env.pop("ANSIBLE_CONFIG", None)
    log = os.path.join(ROOT, ".build", "molecule-kvm_host-%s.log" % provider)
    start = time.time()
    with open(log, "w") as out:
        proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "molecule"), "test", "-s", "kvm_host"],
                              cwd=SCENARIOS, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600,
                              check=False)
    with open(log) as handle:
        text = handle.read()
    if proc.returncode != 0:
        pytest.fail("molecule test -s kvm_host (%s) failed (rc=%d) after %d s; log %s\n%s"
                    % (provider, proc.returncode, time.time() - start, log, text[-25000:]))
    # molecule ran every step that proves the role, each to success (not a shortened sequence)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for step in ("syntax", "create", "prepare", "converge", "idempotence", "side_effect", "verify", "destroy"):
        assert re.search(r"kvm_host \S+ %s: Executed: Successful" % step, plain), "step %s did not succeed" % step
