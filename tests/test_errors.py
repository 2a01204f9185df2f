"""Unexpected errors are logged with an id the person can quote, and never with their Discord id."""

import asyncio
import logging
from types import SimpleNamespace

from cogs.utils.errors import report_error
from cogs.utils.limits import user_tag

USER_ID = 123456789012345678


def test_an_unexpected_error_logs_a_pseudonym_not_the_discord_id(caplog):
    sent = []

    async def send_message(content, **kwargs):
        sent.append((content, kwargs))

    interaction = SimpleNamespace(
        command=SimpleNamespace(qualified_name="compose"), data={}, user=SimpleNamespace(id=USER_ID),
        client=SimpleNamespace(config=SimpleNamespace(log_salt="salt")),
        response=SimpleNamespace(is_done=lambda: False, send_message=send_message))
    with caplog.at_level(logging.ERROR, logger="mozart.errors"):
        asyncio.run(report_error(interaction, RuntimeError("boom")))
    (record,) = caplog.records
    assert str(USER_ID) not in record.getMessage() and str(USER_ID) not in str(record.__dict__)
    assert record.user == user_tag(USER_ID, "salt")  # the job log's pseudonym: the two logs can be joined
    (content, kwargs), = sent
    assert record.error_id in content and kwargs["ephemeral"]  # the person gets the id to quote
