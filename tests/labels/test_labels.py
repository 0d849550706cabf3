"""Each format's label: written, read back and verified; a label altered by one byte is
reported invalid, a stripped one missing; the image's pixels and the audio stay as they were."""

from __future__ import annotations

import array
import io
import uuid
import wave
from dataclasses import replace

import pytest
from PIL import Image

from aigc.ids import uuid7
from aigc.labels import LabelSigner, LayerStatus, UnsupportedFormat, png, verify, wav
from aigc.labels.label import Label, created_at_of
from models.artifacts import png_artifact, text_artifact, wav_artifact
from workers.explicit_labels import TEXT_PREFIX, mark

SIGNER = LabelSigner(b"k" * 32, "aigc-jobs")
JOB_ID = uuid.uuid4()
TEAM_ID = uuid.uuid4()


def make_label() -> Label:
    return SIGNER.label(
        content_id=uuid7(), job_id=JOB_ID, team_id=TEAM_ID, model="tiny-x", model_revision=""
    )


def image_bytes() -> bytes:
    image = Image.new("RGB", (48, 32))
    image.putdata([(x * 5 % 256, x * 7 % 256, x % 256) for x in range(48 * 32)])
    return png_artifact(image).data


def audio_bytes(samples: int = 101) -> bytes:  # odd length: the label chunk needs a pad byte
    return wav_artifact(bytes(range(256))[: samples * 2] * 1, 8000).data


def flip_byte_in(data: bytes, needle: bytes) -> bytes:
    """One byte of the label changed: a character of the job id."""
    at = data.index(needle)
    return data[:at] + (b"0" if data[at : at + 1] != b"0" else b"1") + data[at + 1 :]


def test_the_label_is_signed_and_names_the_artifact() -> None:
    label = make_label()
    assert label.ai_generated and label.version == "aigc-label-v1"
    assert label.created_at == created_at_of(uuid.UUID(label.content_id))
    assert label.created_at.endswith("Z") and SIGNER.is_valid(label)
    assert not SIGNER.is_valid(replace(label, model="other"))
    assert not LabelSigner(b"o" * 32, "aigc-jobs").is_valid(label)
    assert Label.from_json(label.to_json()) == label


def test_png_label_round_trip_keeps_the_pixels() -> None:
    original = image_bytes()
    label = make_label()
    labelled = png.write(original, label)

    report = verify(labelled, SIGNER, media_type="image/png")
    assert (report.format, report.status, report.label) == ("png", LayerStatus.VALID, label)
    with Image.open(io.BytesIO(labelled)) as after, Image.open(io.BytesIO(original)) as before:
        assert after.tobytes() == before.tobytes()
        after.load()  # PIL reads every chunk, CRCs included, without complaint
    assert png.strip(labelled) == original
    # Writing again replaces the label rather than adding a second.
    assert png.read(png.write(labelled, label)) == label


def test_png_tampered_and_stripped() -> None:
    labelled = png.write(image_bytes(), make_label())
    tampered = flip_byte_in(labelled, str(JOB_ID).encode())
    assert verify(tampered, SIGNER).status == LayerStatus.INVALID
    assert verify(png.strip(labelled), SIGNER).status == LayerStatus.MISSING


def test_wav_label_round_trip_still_plays() -> None:
    original = audio_bytes()
    label = make_label()
    labelled = wav.write(original, label)

    report = verify(labelled, SIGNER, filename="a.wav")
    assert (report.format, report.status, report.label) == ("wav", LayerStatus.VALID, label)
    with wave.open(io.BytesIO(labelled)) as after, wave.open(io.BytesIO(original)) as before:
        assert after.getparams() == before.getparams()
        assert after.readframes(after.getnframes()) == before.readframes(before.getnframes())
    assert int.from_bytes(labelled[4:8], "little") == len(labelled) - 8
    assert b"ISFTaigc-jobs" not in labelled and b"ISFT" in labelled  # sized subchunk
    assert wav.read(wav.write(labelled, label)) == label


def test_wav_tampered_and_stripped() -> None:
    labelled = wav.write(audio_bytes(), make_label())
    tampered = flip_byte_in(labelled, str(JOB_ID).encode())
    assert verify(tampered, SIGNER).status == LayerStatus.INVALID
    stripped = wav.strip(labelled)
    assert verify(stripped, SIGNER).status == LayerStatus.MISSING
    with wave.open(io.BytesIO(stripped)) as audio:
        assert audio.getnframes() == 101


def test_text_label_is_the_sidecar() -> None:
    data = text_artifact("hello", 1).data
    label = make_label()
    report = verify(data, SIGNER, media_type="text/plain", sidecar=label.to_json())
    assert (report.format, report.status, report.label) == ("text", LayerStatus.VALID, label)
    tampered = flip_byte_in(label.to_json(), str(JOB_ID).encode())
    assert verify(data, SIGNER, filename="a.txt", sidecar=tampered).status == LayerStatus.INVALID
    assert verify(data, SIGNER, filename="a.txt", sidecar=b"{").status == LayerStatus.INVALID
    assert verify(data, SIGNER, filename="a.txt").status == LayerStatus.MISSING


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(UnsupportedFormat):
        verify(b"GIF89a...", SIGNER, media_type="image/gif")


def test_explicit_marks() -> None:
    text = mark(text_artifact("hello", 1))
    assert text.data.decode() == TEXT_PREFIX + "hello"
    assert text.facts["characters"] == len(TEXT_PREFIX) + 5

    original = png_artifact(Image.new("RGB", (256, 128), (255, 255, 255)))
    marked = mark(original)
    with Image.open(io.BytesIO(marked.data)) as image:
        assert image.size == (256, 128)
        assert image.getpixel((2, 2)) == (255, 255, 255)  # the picture is left alone
        assert image.getpixel((254, 126)) == (0, 0, 0)  # the mark, bottom right
    # Audio starts with the chime: 0.4 s more, the original samples after it unchanged.
    samples = bytes(range(20))
    audio = mark(wav_artifact(samples, 8000))
    with wave.open(io.BytesIO(audio.data)) as marked:
        assert (marked.getnchannels(), marked.getsampwidth(), marked.getframerate()) == (1, 2, 8000)
        frames = marked.readframes(marked.getnframes())
    chime_frames = round(0.4 * 8000)
    assert frames[2 * chime_frames :] == samples
    assert max(abs(s) for s in array.array("h", frames[: 2 * chime_frames])) > 8000  # audible
    assert audio.facts["duration_s"] == round((chime_frames + 10) / 8000, 3)
