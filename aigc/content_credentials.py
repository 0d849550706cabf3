"""C2PA content credentials: a signed manifest embedded in each PNG and WAV artifact that
says it was made by a generative model (the `c2pa.created` action with IPTC's
`trainedAlgorithmicMedia` source type), by which model and service, plus this
deployment's own label as an assertion. Any C2PA reader (c2patool, Adobe's Content
Credentials site) shows it; `read` here reports it and whether it validates.

Signing needs an X.509 certificate chain and its private key (ES256: ECDSA P-256). An
operator supplies them (AIGC_C2PA_SIGNING_CERT, AIGC_C2PA_SIGNING_KEY: PEM files, the
chain leaf first) and, for verifying, the roots they trust (AIGC_C2PA_TRUST_ANCHORS).
Where none is set (one machine: `aigc up`, the tests) a test CA and signing certificate
are generated on first use into <var_dir>/c2pa-test-credentials.pem (mode 0600); their
manifests validate against that CA and against nothing else.

The manifest is added last, after every other label is written: it hashes the file's
bytes (all but itself), so a later change to them reads as tampered.
"""

from __future__ import annotations

import datetime
import io
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aigc.private_file import create_private, read_private
from aigc.settings import Settings

TEST_CREDENTIALS_FILE = "c2pa-test-credentials.pem"
TEST_CERTIFICATE_DAYS = 3650
SIGNING_ALGORITHM = b"es256"
# IPTC's term for media made by a model trained on sampled content.
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
LABEL_ASSERTION = "com.aigc-jobs.label"
SIGNED_TYPES = ("image/png", "audio/wav")
# The manifest's own thumbnail would add ~30 KB to every artifact and repeat the image.
_SDK_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----\n.*?\n-----END [A-Z ]+-----\n?", re.DOTALL)


@dataclass(frozen=True)
class Credentials:
    """A signing certificate chain (leaf first), its private key, and the roots a verifier
    trusts, all PEM."""

    chain: bytes
    private_key: bytes
    trust_anchors: bytes | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Credentials:
        """The operator's files where configured, else the test credentials in var_dir."""
        if settings.c2pa_signing_cert is not None and settings.c2pa_signing_key is not None:
            anchors = settings.c2pa_trust_anchors
            return cls(
                chain=settings.c2pa_signing_cert.read_bytes(),
                private_key=settings.c2pa_signing_key.read_bytes(),
                trust_anchors=anchors.read_bytes() if anchors else None,
            )
        return generated_credentials(settings.var_dir)

    @classmethod
    def existing(cls, settings: Settings) -> Credentials | None:
        """As from_settings, but None rather than new test credentials where there are
        none (a verifier elsewhere than the deployment's own machine)."""
        configured = settings.c2pa_signing_cert and settings.c2pa_signing_key
        if configured or (settings.var_dir / TEST_CREDENTIALS_FILE).exists():
            return cls.from_settings(settings)
        return None


@dataclass(frozen=True)
class ManifestReport:
    """What a file's C2PA manifest says, as `aigc verify` shows it. `state` is the SDK's:
    Trusted (valid, and signed under a trust anchor), Valid (valid, signer not trusted),
    Invalid (a hash or signature does not match: the file was changed), or None (no
    manifest)."""

    state: str | None
    issuer: str | None = None
    signer: str | None = None
    ai_generated: bool = False
    software: str | None = None
    label: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)


class ContentCredentials:
    """Signs and reads manifests with one set of credentials; made once per process."""

    def __init__(self, credentials: Credentials, producer: str) -> None:
        self.credentials = credentials
        self.producer = producer

    @cached_property
    def _signer(self) -> c2pa.Signer:
        info = c2pa.C2paSignerInfo(
            alg=SIGNING_ALGORITHM,
            sign_cert=self.credentials.chain,
            private_key=self.credentials.private_key,
            ta_url=None,
        )
        return c2pa.Signer.from_info(info)

    @cached_property
    def _signing_context(self) -> c2pa.Context:
        return c2pa.Context(c2pa.Settings.from_dict(_SDK_SETTINGS))

    @cached_property
    def _reading_context(self) -> c2pa.Context:
        verify: dict[str, Any] = {}
        if self.credentials.trust_anchors:
            verify = {"trust": {"trust_anchors": self.credentials.trust_anchors.decode()}}
        return c2pa.Context(c2pa.Settings.from_dict(verify))

    def sign(self, data: bytes, mime_type: str, *, model: str, label: dict[str, Any]) -> bytes:
        """`data` with a manifest embedded: created by `model`, AI-generated, carrying
        `label` (JSON-serialisable) as the LABEL_ASSERTION assertion."""
        manifest = {
            "claim_generator_info": [{"name": self.producer}],
            "title": str(label.get("content_id", "artifact")),
            "assertions": [
                {
                    "label": "c2pa.actions",
                    "data": {
                        "actions": [
                            {
                                "action": "c2pa.created",
                                "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                                "softwareAgent": {"name": model},
                            }
                        ]
                    },
                },
                {"label": LABEL_ASSERTION, "data": label},
            ],
        }
        signed = io.BytesIO()
        with c2pa.Builder(manifest, self._signing_context) as builder:
            builder.sign(self._signer, mime_type, io.BytesIO(data), signed)
        return signed.getvalue()

    def read(self, data: bytes, mime_type: str) -> ManifestReport:
        try:
            with c2pa.Reader(mime_type, io.BytesIO(data), context=self._reading_context) as reader:
                state = reader.get_validation_state()
                results = reader.get_validation_results() or {}
                store = json.loads(reader.json())
        except c2pa.C2paError:
            return ManifestReport(state=None)  # no manifest, or none that can be parsed
        active = store.get("manifests", {}).get(store.get("active_manifest"), {})
        signature = active.get("signature_info") or {}
        assertions = {item.get("label"): item.get("data") for item in active.get("assertions", [])}
        created = [
            action
            for action in (
                assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}
            ).get("actions", [])
            if action.get("action") == "c2pa.created"
        ]
        failures = [item["code"] for item in results.get("activeManifest", {}).get("failure", [])]
        return ManifestReport(
            state=str(state) if state is not None else None,
            issuer=signature.get("issuer"),
            signer=signature.get("common_name"),
            ai_generated=any(
                action.get("digitalSourceType") == TRAINED_ALGORITHMIC_MEDIA for action in created
            ),
            software=next(
                (action.get("softwareAgent", {}).get("name") for action in created), None
            ),
            label=assertions.get(LABEL_ASSERTION),
            failures=failures,
        )


def generated_credentials(var_dir: Path) -> Credentials:
    """The test CA and signing certificate in var_dir, made on first use. Creation is
    atomic, so processes starting together end up with the same ones."""
    path = var_dir / TEST_CREDENTIALS_FILE
    text = read_private(path)
    if text is None:
        create_private(path, _new_test_credentials().decode())
        text = read_private(path)
    assert text is not None  # made above, by this process or another
    key, leaf, root = (block.encode() for block in _PEM_BLOCK.findall(text))
    return Credentials(chain=leaf + root, private_key=key, trust_anchors=root)


CHAIN_FILE, KEY_FILE, ANCHORS_FILE = "chain.pem", "key.pem", "trust-anchors.pem"


def write_test_credentials(folder: Path) -> list[Path]:
    """New test credentials as the three files an operator supplies (the key mode 0600),
    for a trial deployment of several containers, which must share one signer; refuses to
    overwrite. The paths written."""
    key, leaf, root = (
        block.encode() for block in _PEM_BLOCK.findall(_new_test_credentials().decode())
    )
    paths = [folder / CHAIN_FILE, folder / KEY_FILE, folder / ANCHORS_FILE]
    if existing := [path for path in paths if path.exists()]:
        raise FileExistsError(f"{existing[0]} exists: not overwritten")
    folder.mkdir(parents=True, exist_ok=True)
    create_private(paths[1], key.decode())
    paths[0].write_bytes(leaf + root)
    paths[2].write_bytes(root)
    return paths


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aigc-jobs test credentials"),
        ]
    )


def _new_test_credentials() -> bytes:
    """PEM: the signing key, its certificate, and the CA certificate that issued it. C2PA
    refuses a self-signed signing certificate, hence the two."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        now - datetime.timedelta(days=1),
        now + datetime.timedelta(days=TEST_CERTIFICATE_DAYS),
    )
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(not_valid_before=start, not_valid_after=end)
        .subject_name(_name("aigc-jobs test CA"))
        .issuer_name(_name("aigc-jobs test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(**{**usage, "key_cert_sign": True, "crl_sign": True}), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder(not_valid_before=start, not_valid_after=end)
        .subject_name(_name("aigc-jobs test signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**{**usage, "digital_signature": True}), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + leaf.public_bytes(pem)
        + ca.public_bytes(pem)
    )
