"""C2PA manifests (aigc/content_credentials.py): a PNG and a WAV signed with the test
credentials validate as Trusted under their CA and say they are AI-generated; a changed
byte reads as Invalid; a file without a manifest, as none."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from aigc.cli.main import app
from aigc.content_credentials import (
    TEST_CREDENTIALS_FILE,
    ContentCredentials,
    Credentials,
    generated_credentials,
)
from aigc.settings import Settings

LABEL = {"content_id": "01a2-test", "job_id": "01a3-test", "ai_generated": True}


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> ContentCredentials:
    return ContentCredentials(generated_credentials(tmp_path_factory.mktemp("var")), "aigc-jobs")


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), "teal").save(out, "PNG")
    return out.getvalue()


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\x01\x00" * 1600)
    return out.getvalue()


@pytest.mark.parametrize(("mime_type", "make"), [("image/png", _png), ("audio/wav", _wav)])
def test_a_signed_file_is_trusted_and_says_it_is_ai_generated(
    credentials: ContentCredentials, mime_type: str, make: Callable[[], bytes]
) -> None:
    original = make()
    signed = credentials.sign(original, mime_type, model="tiny-image", label=LABEL)
    report = credentials.read(signed, mime_type)
    assert report.state == "Trusted", report.failures
    assert report.ai_generated and report.software == "tiny-image"
    assert report.label == LABEL
    assert report.signer == "aigc-jobs test signer"
    assert len(signed) - len(original) < 8000  # no thumbnail in the manifest


def test_the_file_still_opens_as_what_it_was(credentials: ContentCredentials) -> None:
    image = Image.open(io.BytesIO(credentials.sign(_png(), "image/png", model="m", label=LABEL)))
    assert image.size == (32, 32) and image.convert("RGB").getpixel((0, 0)) == (0, 128, 128)
    audio = credentials.sign(_wav(), "audio/wav", model="m", label=LABEL)
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnframes() == 1600


def test_a_changed_byte_is_invalid_and_no_manifest_is_none(
    credentials: ContentCredentials,
) -> None:
    signed = bytearray(credentials.sign(_png(), "image/png", model="m", label=LABEL))
    pixels = signed.find(b"IDAT") + 8
    signed[pixels] ^= 0x01
    report = credentials.read(bytes(signed), "image/png")
    assert report.state == "Invalid" and "assertion.dataHash.mismatch" in report.failures
    assert credentials.read(_png(), "image/png").state is None


def test_another_ca_does_not_trust_the_signature(
    credentials: ContentCredentials, tmp_path: Path
) -> None:
    signed = credentials.sign(_png(), "image/png", model="m", label=LABEL)
    stranger = generated_credentials(tmp_path)
    assert (tmp_path / TEST_CREDENTIALS_FILE).stat().st_mode & 0o777 == 0o600
    elsewhere = ContentCredentials(
        Credentials(stranger.chain, stranger.private_key, stranger.trust_anchors), "x"
    )
    report = elsewhere.read(signed, "image/png")
    assert report.state == "Valid"  # intact, but not signed under a root it trusts
    assert "signingCredential.untrusted" in report.failures


def test_operator_files_from_the_cli_sign_and_are_trusted(tmp_path: Path) -> None:
    folder = tmp_path / "c2pa"
    result = CliRunner().invoke(app, ["c2pa-test-credentials", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "key.pem").stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(app, ["c2pa-test-credentials", str(folder)])
    assert again.exit_code == 1 and "not overwritten" in again.output
    settings = Settings(
        var_dir=tmp_path / "var",
        c2pa_signing_cert=folder / "chain.pem",
        c2pa_signing_key=folder / "key.pem",
        c2pa_trust_anchors=folder / "trust-anchors.pem",
    )
    signing = ContentCredentials(Credentials.from_settings(settings), "aigc-jobs")
    signed = signing.sign(_png(), "image/png", model="m", label=LABEL)
    assert signing.read(signed, "image/png").state == "Trusted"
    assert not (tmp_path / "var" / TEST_CREDENTIALS_FILE).exists()  # no test CA made
