"""The cluster's CA and the masters' serving certificates: made once, reissued only when they change.

One module for the three that need certificates (Ansible on the controller, the lab, the test and
benchmark harness), so they are made the same way everywhere. It imports nothing of Berth, only
`cryptography` (a dependency of ansible-core too): Ansible runs it as a plain file with the Python
running the playbook, and needs no collection. A second run changes nothing (`issue` keeps a
certificate that this CA signed, for these addresses, with more than `RENEW_BEFORE` left), so the
playbook's second run reports `changed=0`. Private keys are written 0600, never printed.

    python berth/certs.py ca DIR
    python berth/certs.py issue --ca-dir DIR --name m1 --san 10.0.0.1 --san m1.example --out-dir OUT

Each prints `changed` or `unchanged` (what Ansible's `changed_when` reads).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CA_DAYS = 3650  # as kubeadm's CA
CERT_DAYS = 365  # as kubeadm's serving certificates
RENEW_BEFORE = dt.timedelta(days=30)  # a run this close to the end issues a new one


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    """0600 from its first byte (no window where another user could read it), then renamed in place."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(directory: Path, common_name: str = "berth-ca") -> bool:
    """`ca.crt` and `ca.key` in `directory`, unless both are there already. True: made now."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())  # P-256: a TLS handshake signs in well under 1 ms
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(_cert_pem(cert))
    return True


def _general_name(san: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(san))
    except ValueError:
        return x509.DNSName(san)


def sans_of(cert: x509.Certificate) -> set[str]:
    """A certificate's subject alternative names as text: IP addresses and DNS names alike."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(a) for a in ext.get_values_for_type(x509.IPAddress)} | set(
        ext.get_values_for_type(x509.DNSName))


def _current(cert_path: Path, key_path: Path, ca: x509.Certificate, sans: set[str]) -> bool:
    """The existing pair is this CA's, for exactly these names, and far from its end."""
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca)
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return (_spki(key.public_key()) == _spki(cert.public_key())  # type: ignore[arg-type]
            and sans_of(cert) == sans and cert.not_valid_after_utc - _now() > RENEW_BEFORE)


def _spki(public_key: ec.EllipticCurvePublicKey) -> bytes:
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return public_key.public_bytes(der, spki)


def issue(ca_dir: Path, name: str, sans: list[str], out_dir: Path) -> bool:
    """`NAME.crt` and `NAME.key` in `out_dir`: a serving certificate for `sans` (IPs and DNS names),
    signed by the CA in `ca_dir`. Kept when current (see `_current`); True: issued now."""
    wanted = {str(ipaddress.ip_address(s)) if _is_ip(s) else s for s in sans}
    if not wanted:
        raise ValueError("a certificate needs at least one address or name (--san)")
    ca = x509.load_pem_x509_certificate((ca_dir / CA_CERT).read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / CA_KEY).read_bytes(), None)
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / f"{name}.crt", out_dir / f"{name}.key"
    if _current(cert_path, key_path, ca, wanted):
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName([_general_name(s) for s in sorted(wanted)]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),  # type: ignore[arg-type]
                           critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type] - an EC key, made by make_ca
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(_cert_pem(cert))
    return True


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="berth-certs", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ca = commands.add_parser("ca", help="make the cluster CA in DIR unless it is there")
    ca.add_argument("dir", type=Path)
    one = commands.add_parser("issue", help="a serving certificate signed by the CA, kept while current")
    one.add_argument("--ca-dir", type=Path, required=True)
    one.add_argument("--name", required=True, help="the files' name (NAME.crt, NAME.key) and the subject")
    one.add_argument("--san", action="append", default=[], help="an IP address or DNS name (repeat)")
    one.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        changed = (make_ca(args.dir) if args.command == "ca"
                   else issue(args.ca_dir, args.name, args.san, args.out_dir))
    except (OSError, ValueError) as err:
        print(f"berth-certs: {err}", file=sys.stderr)
        return 1
    print("changed" if changed else "unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
