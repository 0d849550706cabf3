"""Our signer against the `standardwebhooks` package's verify, unchanged."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from aigc.webhooks.signing import new_secret, signed_headers


def test_a_signed_message_verifies_with_the_package() -> None:
    secret = new_secret()
    body = b'{"type":"job.completed","data":{"id":"x"}}'
    headers = signed_headers("msg_1", int(time.time()), body, [secret])
    assert Webhook(secret).verify(body, headers) == {"type": "job.completed", "data": {"id": "x"}}


def test_during_rotation_either_secret_verifies_and_no_other_does() -> None:
    new, old = new_secret(), new_secret()
    body = b'{"type":"job.started"}'
    headers = signed_headers("msg_2", int(time.time()), body, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(body, headers)
    Webhook(old).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_a_changed_body_id_or_timestamp_fails() -> None:
    secret = new_secret()
    now = int(time.time())
    body = b'{"a":1}'
    headers = signed_headers("msg_3", now, body, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "msg_4"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-timestamp": str(now - 1)})


def test_secrets_are_whsec_and_long_enough() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) >= len("whsec_") + 32
    assert new_secret() != secret
