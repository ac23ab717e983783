"""The local CA and broker certificates, checked with openssl, not our code."""
import subprocess

from cryptography import x509

from deploy.tls import ensure_ca, ensure_node


def verify(ca, cert):
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), "-purpose", "sslserver",
                           "-verify_hostname", "localhost", str(cert)],
                          capture_output=True, text=True)


def test_a_node_certificate_verifies_against_its_ca_only(tmp_path):
    node = ensure_node(tmp_path / "ca", tmp_path / "county", "zhzx-county.localhost")
    ok = verify(node / "ca.crt", node / "tls.crt")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    client = subprocess.run(["openssl", "verify", "-CAfile", str(node / "ca.crt"), "-purpose",
                             "sslclient", str(node / "tls.crt")], capture_output=True, text=True)
    assert client.returncode == 0, client.stderr
    ensure_ca(tmp_path / "other")
    assert verify(tmp_path / "other" / "ca.crt", node / "tls.crt").returncode != 0
    cert = x509.load_pem_x509_certificate((node / "tls.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert oct((node / "tls.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"


def test_certificates_are_made_once_and_again_for_a_new_ca(tmp_path):
    node = ensure_node(tmp_path / "ca", tmp_path / "n", "n")
    first = (node / "tls.crt").read_bytes()
    assert (ensure_node(tmp_path / "ca", tmp_path / "n", "n") / "tls.crt").read_bytes() == first
    for f in ("ca.crt", "ca.key"):
        (tmp_path / "ca" / f).unlink()
    again = ensure_node(tmp_path / "ca", tmp_path / "n", "n")
    assert (again / "tls.crt").read_bytes() != first
    assert verify(tmp_path / "ca" / "ca.crt", again / "tls.crt").returncode == 0
