"""Test keys for the simulated Google: RSA keys, self-signed x509 certificates, RS256 JWTs (via google-auth)."""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt


@dataclass(frozen=True)
class TestKey:
    """An RSA key with its key id and a self-signed certificate, as Google publishes them."""

    kid: str
    private_pem: str
    certificate_pem: str

    @classmethod
    def generate(cls, subject: str) -> TestKey:
        """A fresh 2048-bit key; its certificate names `subject` and is valid for a day either side of now."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject[:64])])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .sign(key, hashes.SHA256())
        )
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return cls(secrets.token_hex(20), private_pem, cert.public_bytes(serialization.Encoding.PEM).decode())

    def sign(self, claims: dict) -> str:
        """An RS256 JWT of these claims, with this key's id in the header."""
        signer = crypt.RSASigner.from_string(self.private_pem, key_id=self.kid)
        return jwt.encode(signer, claims).decode()

    def verify(self, token: str, audience: str | list[str]) -> dict:
        """The claims of a JWT this key signed for `audience`; ValueError otherwise."""
        return dict(jwt.decode(token, certs={self.kid: self.certificate_pem}, audience=audience))
