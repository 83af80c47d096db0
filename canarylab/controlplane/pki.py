"""Certificates and keys for a local control plane: a CA, the API server's serving certificate, client
certificates for the admin and each component, and the service-account signing key.

Everything is ECDSA P-256 (fast to generate; every Kubernetes component accepts it, including ES256 for
service-account tokens). Files are written with mode 0600 under the control plane's ``pki`` directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_IP = "10.96.0.1"
"""The ``kubernetes`` Service's ClusterIP (first address of ``--service-cluster-ip-range=10.96.0.0/16``)."""

SERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local")


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key on disk."""

    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


class Authority:
    """A throwaway CA that signs the control plane's certificates (valid for a year)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._key = _key()
        now = dt.datetime.now(dt.UTC)
        subject = _name("canarylab-ca")
        self._cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.pair = Pair(_write(directory / "ca.crt", self._cert.public_bytes(serialization.Encoding.PEM)),
                         _write(directory / "ca.key", _key_pem(self._key)))

    def issue(self, name: str, common_name: str, *, organization: str | None = None, server: bool = False,
              ips: tuple[str, ...] = (), dns: tuple[str, ...] = ()) -> Pair:
        """A leaf certificate ``<name>.crt``/``<name>.key``: a client certificate, or a serving one."""
        key = _key()
        now = dt.datetime.now(dt.UTC)
        usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (
            x509.CertificateBuilder().subject_name(_name(common_name, organization))
            .issuer_name(self._cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        )
        if ips or dns:
            alt: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
            alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return Pair(_write(self.dir / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM)),
                    _write(self.dir / f"{name}.key", _key_pem(key)))


def service_account_keys(directory: Path) -> Pair:
    """The key pair that signs service-account tokens: ``sa.key`` (private) and ``sa.pub``."""
    key = _key()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return Pair(_write(directory / "sa.pub", public), _write(directory / "sa.key", _key_pem(key)))
