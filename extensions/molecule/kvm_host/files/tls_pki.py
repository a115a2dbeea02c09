"""A throw-away PKI for libvirt's TLS transport in the kvm_host scenario: a CA, a server certificate for the
guest's management address and a client certificate, in the file names libvirt looks for.

    python tls_pki.py DIR ADDRESS

writes DIR/cacert.pem, DIR/servercert.pem, DIR/serverkey.pem (installed on the guest under /etc/pki) and
DIR/clientcert.pem, DIR/clientkey.pem (the controller's pkipath), and DIR/address. A DIR made for the same
address is kept as it is, so a second run changes nothing (and prints nothing); for another address (the
guest made again with another lease) everything is made anew. Prints "made" when it wrote the files. Uses
the cryptography package that ansible-core depends on.
"""

import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, u"virtforge molecule"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(ca):
    return x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=not ca,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def _certificate(subject, key, issuer, issuer_key, ca, extra):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(_usage(ca), critical=True))
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path, data, mode):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.rename(tmp, path)


def main(directory, address):
    recorded = os.path.join(directory, "address")
    if os.path.exists(recorded):
        with open(recorded) as handle:
            if handle.read().strip() == address:
                return 0
    os.makedirs(directory, mode=0o700, exist_ok=True)
    ca_key = _key()
    ca_name = _name(u"virtforge molecule CA")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, True, [])
    server_key = _key()
    server = _certificate(_name(address), server_key, ca_name, ca_key, False, [
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))])])
    client_key = _key()
    client = _certificate(_name(u"virtforge molecule controller"), client_key, ca_name, ca_key, False, [
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])])
    pem = serialization.Encoding.PEM
    for fname, cert in (("cacert.pem", ca), ("servercert.pem", server), ("clientcert.pem", client)):
        _write(os.path.join(directory, fname), cert.public_bytes(pem), 0o644)
    for fname, key in (("serverkey.pem", server_key), ("clientkey.pem", client_key)):
        _write(os.path.join(directory, fname),
               key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
    _write(recorded, (address + "\n").encode(), 0o644)   # last: the files above are complete
    print("made")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
