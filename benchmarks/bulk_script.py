"""The limit: define + start N tiny domains with plain libvirt-python on one connection."""

import sys

import libvirt

from common import tiny_domain_xml

count, prefix = int(sys.argv[1]), sys.argv[2]
conn = libvirt.open("qemu:///system")
for i in range(count):
    dom = conn.defineXML(tiny_domain_xml("%s%02d" % (prefix, i)))
    dom.create()
conn.close()
