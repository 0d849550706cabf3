"""Implicit AI-generated labels: a signed record, written into each artifact's own metadata
(PNG iTXt, WAV LIST/INFO) or next to it (text), and checked by `aigc verify` and
`POST /v1/verify`. Standard library only: the API imports it and must not import torch.

Verification reports one "layer" per kind of label it can find; this package gives the
metadata layer. Further layers (a C2PA manifest, an invisible watermark) are reported
next to it by adding a LayerReport to the VerifyReport (aigc.labels.verify).
"""

from aigc.labels.label import LABEL_VERSION, Label, LabelSigner, MalformedLabel
from aigc.labels.verify import LayerReport, LayerStatus, UnsupportedFormat, VerifyReport, verify

__all__ = [
    "LABEL_VERSION",
    "Label",
    "LabelSigner",
    "LayerReport",
    "LayerStatus",
    "MalformedLabel",
    "UnsupportedFormat",
    "VerifyReport",
    "verify",
]
