# virtforge.libvirt — developer and CI entry points.
#   make demo    install what is missing, start libvirtd, build the golden image, deploy 3 VMs
#   make test    lint, unit tests and every integration, conversion and molecule suite against a real libvirtd,
#                side by side in lanes (hack/suite.sh, docs/testing.md)
#   make bench   benchmarks (not part of make test), see docs/performance.md
SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BUILD := $(ROOT)/.build
COLL_ROOT := $(BUILD)/collections
COLL := $(COLL_ROOT)/ansible_collections/virtforge/libvirt
export ANSIBLE_COLLECTIONS_PATH := $(COLL_ROOT)
export ANSIBLE_PYTHON_INTERPRETER := $(PY)
export ANSIBLE_CONFIG := $(ROOT)/tests/ansible.cfg
export PATH := $(VENV)/bin:$(PATH)
export LIBGUESTFS_BACKEND := direct
PYTEST_ARGS ?=

.PHONY: deps system-deps venv collection lab lab-down image generic-image host-image lint ruff ansible-lint sanity unit \
        integration run-integration run-exclusive suite test-conversions run-conversions test-molecule \
        run-molecule test test-full \
        test-quick demo demo-clean bench build build-check clean

deps: system-deps venv collection

system-deps:
	@bash hack/install-system-deps.sh

$(VENV)/.stamp: requirements.txt requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.stamp

collection:
	@mkdir -p $(dir $(COLL))
	@test -L $(COLL) || ln -sfn $(ROOT) $(COLL)

lab: deps
	@bash tests/lab/lab.sh up

lab-down:
	@bash tests/lab/lab.sh down

image: lab
	@bash tests/lab/golden-image.sh

# the golden recipe with Debian's generic kernel (SATA, e1000): the V2P target's source and result, and the
# same for UEFI (GPT, EFI system partition): its UEFI source (needs no lab)
generic-image: deps
	@bash tests/lab/golden-image.sh --generic
	@bash tests/lab/golden-image.sh --efi

# the image of the guest the molecule scenario kvm_host turns into a KVM host (needs no lab)
host-image: deps
	@bash tests/lab/golden-image.sh --host

ruff: venv
	$(VENV)/bin/ruff check plugins tests benchmarks extensions

ansible-lint: venv collection
	cd $(ROOT) && $(VENV)/bin/ansible-lint --profile production --offline

# ansible-test provisions its own venvs per sanity test; its pip bootstrap script comes from a host
# our machines cannot reach, so hack/ansible-test-get-pip.py stands in for it (see docs/testing.md).
SANITY_VENV := $(BUILD)/sanity-venv
SANITY_DIR := $(BUILD)/sanity-tree
ANSIBLE_TEST_CACHE := $(HOME)/.ansible/test/cache
$(SANITY_VENV)/.stamp: requirements.txt
	@test -x $(SANITY_VENV)/bin/python || python3 -m venv $(SANITY_VENV)
	@$(SANITY_VENV)/bin/pip install -q --disable-pip-version-check $$(grep '^ansible-core' requirements.txt)
	@mkdir -p $(ANSIBLE_TEST_CACHE)/wheels
	@$(SANITY_VENV)/bin/pip download -q --disable-pip-version-check --no-deps -d $(ANSIBLE_TEST_CACHE)/wheels pip==24.2
	@cp hack/ansible-test-get-pip.py $(ANSIBLE_TEST_CACHE)/get_pip_24_2.py
	@touch $@

sanity: $(SANITY_VENV)/.stamp
	@# ansible-test runs from a tree at ansible_collections/NS/NAME; a git repo of its own there tells it
	@# which files are the collection's (the enclosing checkout ignores .build/)
	@rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)/ansible_collections/virtforge/libvirt
	@git ls-files -co --exclude-standard | rsync -a --files-from=- ./ $(SANITY_DIR)/ansible_collections/virtforge/libvirt/
	@cd $(SANITY_DIR)/ansible_collections/virtforge/libvirt && git init -q && git add -A
	cd $(SANITY_DIR)/ansible_collections/virtforge/libvirt && \
	  $(SANITY_VENV)/bin/ansible-test sanity --requirements --python 3.11 --color no

lint: ruff ansible-lint sanity build-check

unit: venv collection
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

# every integration target one after another (make test runs them in lanes: run-integration, then run-exclusive)
integration: image
	$(PY) -m pytest tests/integration -v -m "not conversion and not molecule" --durations=0 $(PYTEST_ARGS)
run-integration:
	$(PY) -m pytest tests/integration -v -m "not conversion and not molecule and not exclusive" --durations=0 $(PYTEST_ARGS)
run-exclusive:
	$(PY) -m pytest tests/integration -v -m exclusive --durations=0 $(PYTEST_ARGS)

# molecule scenarios (extensions/molecule): a guest converged into a KVM host (providers: VF_MOLECULE_PROVIDERS)
test-molecule: image host-image run-molecule
run-molecule:
	$(PY) -m pytest tests/integration -v -m molecule --durations=0 $(PYTEST_ARGS)

# P2V/V2V/V2P: real conversions under software emulation take minutes each (docs/testing.md)
test-conversions: image generic-image run-conversions
run-conversions:
	$(PY) -m pytest tests/integration -v -m conversion --durations=0 $(PYTEST_ARGS)

# the whole suite: lint, unit tests and the end-to-end suites in lanes side by side (hack/suite.sh)
test: deps suite
suite: deps
	@bash hack/suite.sh

# the same suites one after another (for timings without load)
test-full: deps lint unit integration test-conversions test-molecule

test-quick: venv collection lint unit

demo: image
	$(VENV)/bin/ansible-playbook -i playbooks/inventory/localhost.yml playbooks/demo.yml

demo-clean: lab
	$(VENV)/bin/ansible-playbook -i playbooks/inventory/localhost.yml playbooks/demo.yml \
	  -e vf_demo_state=absent -e vm_deploy_remove_storage=true

BENCH_VENV := $(BUILD)/bench-venv
$(BENCH_VENV)/.stamp: requirements.txt requirements-bench.txt
	@test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt $$(grep '^ansible==' requirements-bench.txt)
	@touch $@

bench: image $(BENCH_VENV)/.stamp
	$(BENCH_VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)

build: venv
	$(VENV)/bin/ansible-galaxy collection build --force --output-path $(BUILD)/dist

# the tarball builds, installs offline, and every plugin in it has documentation ansible-doc renders
build-check: build
	@rm -rf $(BUILD)/dist/installed
	$(VENV)/bin/ansible-galaxy collection install --offline --force -p $(BUILD)/dist/installed $(BUILD)/dist/virtforge-libvirt-*.tar.gz
	@cd $(BUILD)/dist && for kind in module inventory filter; do \
	  names=$$(ANSIBLE_COLLECTIONS_PATH=$(BUILD)/dist/installed $(VENV)/bin/ansible-doc -t $$kind -l virtforge.libvirt --json \
	    | $(PY) -c 'import json,sys; print(" ".join(json.load(sys.stdin)))'); \
	  test -n "$$names" || { echo "no $$kind plugins in the installed tarball"; exit 1; }; \
	  ANSIBLE_COLLECTIONS_PATH=$(BUILD)/dist/installed $(VENV)/bin/ansible-doc -t $$kind $$names >/dev/null || exit 1; \
	  echo "build-check: $$kind: $$names"; \
	done

clean:
	rm -rf $(BUILD) tests/output
