"""A local certificate authority and the brokers' certificates, for links
over ``amqps`` on this machine.

``make up`` makes one CA per run directory and a certificate per broker node,
valid for ``localhost`` and 127.0.0.1 and for both server and client use (a
broker serves its TLS listener with it, and presents it when its federation
link connects to the other broker). The files carry cert-manager's names
(``ca.crt``, ``tls.crt``, ``tls.key``), so the same link settings take
certificates that production issues (docs/linkage.md). Made with
``cryptography``: no openssl command line to get right, and the keys never
pass through a shell.
"""
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS, NODE_DAYS = 3650, 825
FILES = ("ca.crt", "tls.crt", "tls.key")


def _write_key(path, key):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _builder(subject, issuer, public, days):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days)))


def ensure_ca(directory):
    """The run's CA (``ca.crt``, ``ca.key``), made once."""
    directory = Path(directory)
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not (cert_path.exists() and key_path.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zhzx local"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "zhzx local CA")])
        cert = (_builder(name, name, key.public_key(), CA_DAYS)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False),
                    critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        _write_key(key_path, key)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return ca_cert, ca_key


def ensure_node(ca_dir, directory, common_name, hosts=("localhost",), ips=("127.0.0.1",)):
    """``directory`` with ``ca.crt``, ``tls.crt`` and ``tls.key`` for one
    broker node, signed by the CA in ``ca_dir``; made once, and again when
    the CA changed. Returns the directory."""
    directory = Path(directory)
    ca_cert, ca_key = ensure_ca(ca_dir)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    if all((directory / f).exists() for f in FILES) and (directory / "ca.crt").read_bytes() \
            == ca_pem:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zhzx local"),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    names = [x509.DNSName(h) for h in hosts] + [x509.IPAddress(ipaddress.ip_address(i))
                                                 for i in ips]
    cert = (_builder(subject, ca_cert.subject, key.public_key(), NODE_DAYS)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(directory / "tls.key", key)
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "ca.crt").write_bytes(ca_pem)
    return directory
