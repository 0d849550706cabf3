"""Webhooks: what events there are and how they are filtered (events), how a message is
signed (signing) and what it says (payloads). Delivery is workers.deliverer's."""
