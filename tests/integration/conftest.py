"""Integration tests: each target under targets/ runs as a playbook against the lab libvirtd.

The lab (tests/lab/lab.sh up) and the golden image (tests/lab/golden-image.sh) are prepared by
`make integration`; these fixtures only read what they left behind and refuse to run without it,
so a missing lab is a failure, never a silent skip.
"""

import json
import os
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.environ.get("VF_LAB_DIR", "/var/lib/virtforge-lab")
URI = "qemu:///system"


def _record(name):
    path = os.path.join(LAB_DIR, name + ".json")
    if os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    return {}


def lab_vars():
    golden = _record("golden")
    generic = _record("generic")  # tests/lab/golden-image.sh --generic (make generic-image)
    efi = _record("efi")  # tests/lab/golden-image.sh --efi (make generic-image)
    return dict(
        vf_lab_uri=URI,
        vf_lab_pool=os.environ.get("VF_LAB_POOL", "vflab"),
        vf_lab_pool_path=os.path.join(LAB_DIR, "pool"),
        vf_lab_network=os.environ.get("VF_LAB_NET", "vflab-net"),
        vf_lab_dir=LAB_DIR,
        vf_lab_ns=os.environ.get("VF_LAB_NS", "vflab"),
        vf_golden_image=golden.get("path", ""),
        vf_golden_sha256=golden.get("sha256", ""),
        vf_generic_image=generic.get("path", ""),
        vf_generic_sha256=generic.get("sha256", ""),
        vf_efi_image=efi.get("path", ""),
        vf_efi_sha256=efi.get("sha256", ""),
        vf_repo_root=ROOT,
        # how long a target waits for a guest to boot (agent, address, DHCP lease): a guest that boots in
        # about a minute on an idle lab machine takes several times as long while make test's lanes share
        # its 2 CPUs; only a failing wait lasts this long
        vf_lab_boot_timeout=int(os.environ.get("VF_LAB_BOOT_TIMEOUT", "900")),
    )


@pytest.fixture(scope="session")
def lab():
    rc = subprocess.run(["virsh", "-c", URI, "version"], capture_output=True, check=False).returncode
    if rc != 0:
        pytest.fail("the lab libvirtd does not answer: run `make lab` (tests/lab/lab.sh up) first")
    return lab_vars()


def run_playbook(playbook, extra_vars, check=False, diff=False, env=None, timeout=3600):
    os.makedirs(os.path.join(ROOT, ".build"), exist_ok=True)
    # one file per run: targets run side by side must not read each other's variables
    fd, vars_file = tempfile.mkstemp(prefix="lab_vars-", suffix=".json", dir=os.path.join(ROOT, ".build"))
    with os.fdopen(fd, "w") as handle:
        json.dump(extra_vars, handle)
    argv = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), playbook, "-e", "@" + vars_file]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    full_env = dict(os.environ)
    full_env.setdefault("ANSIBLE_CONFIG", os.path.join(ROOT, "tests", "ansible.cfg"))
    full_env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build", "collections"))
    full_env.setdefault("ANSIBLE_PYTHON_INTERPRETER", os.path.join(ROOT, ".venv", "bin", "python"))
    full_env["ANSIBLE_ROLES_PATH"] = os.path.join(ROOT, "tests", "integration", "targets")
    full_env.update(env or {})
    try:
        return subprocess.run(argv, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    finally:
        os.unlink(vars_file)
