"""Stand-in for the get-pip bootstrap script that ansible-test downloads for its sanity venvs.

ansible-test fetches get-pip from a CI file host that this project's machines cannot reach; it looks
for a cached copy first (~/.ansible/test/cache/get_pip_<version>.py). `make sanity` installs this file
there. It does what get-pip does: put pip into the running interpreter (from the stdlib's bundled
ensurepip wheel), then `pip install` the packages ansible-test asked for (pip itself) from the
wheels `make sanity` downloaded beside it with the project's own pip.
"""

import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
wheels = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wheels")
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", wheels] + args))
