"""ChatMessenger against SimChat over HTTP: googleapiclient and google-auth unchanged, errors sorted for the outbox."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.gchat.messenger import ChatMessenger
from bot.outbox import Gone, TryLater, Undeliverable
from bot.simchat import SimChat
from flows.messages import Button, Message

OFFICE = "spaces/OFFICE"
SAM, JO = "users/101", "users/102"
SINCE = datetime(2025, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def sim():
    with SimChat(users={SAM: "Sam Visitor", JO: "Jo Reid"}, spaces={OFFICE: "Office"}) as running:
        yield running


@pytest.fixture
def messenger(sim):
    return ChatMessenger(sim.credentials(), sim.base_url)


def alert(key: str = "alert:1:2", to: str = OFFICE, text: str = ":rotating_light: *Sam* is 15 minutes late") -> Message:
    return Message(to=to, text=text, fields=(("Where", "12 Oak Road"),), buttons=(Button("I'm on it", "ack", "7"),), key=key)


def seen(sim, where: str) -> list[str]:
    return [m.plain() for m in sim.messages(where)]


def test_a_message_to_a_space_arrives_with_its_card(sim, messenger):
    space, name = messenger.post(alert(), outbox_key="alert:1:2")
    assert space == OFFICE and name.startswith(OFFICE + "/messages/")
    assert seen(sim, OFFICE) == ["\U0001f6a8 *Sam* is 15 minutes late\nWhere: 12 Oak Road\n[I'm on it]"]


def test_a_person_is_reached_in_their_dm_found_once(sim, messenger):
    first = messenger.post(Message(to=SAM, text="Check in, please", key="c1"))
    second = messenger.post(Message(to=SAM, text="Second reminder", key="c2"))
    assert first[0] == second[0] == sim.dm_space(SAM)
    assert seen(sim, SAM) == ["Check in, please", "Second reminder"]
    assert len(sim.calls_to("spaces.findDirectMessage")) == 1


def test_update_rewrites_the_message_by_name(sim, messenger):
    space, name = messenger.post(alert())
    messenger.update(space, name, Message(to=OFFICE, text=":white_check_mark: Jo is on it", key="alert:1:2:done"))
    assert seen(sim, OFFICE) == ["\u2705 Jo is on it"]
    assert sim.message(name).updated


def test_after_a_lost_answer_find_sees_the_message_and_a_repeat_does_not_duplicate(sim, messenger):
    sim.fail("spaces.messages.create", 503, after=True)  # Chat stored it, the answer never came back
    with pytest.raises(TryLater) as later:
        messenger.post(alert(), outbox_key="alert:1:2")
    assert later.value.maybe_sent
    # A restarted process (a new messenger) looks before posting again, as the outbox does.
    restarted = ChatMessenger(sim.credentials(), sim.base_url)
    found = restarted.find(OFFICE, "alert:1:2", SINCE)
    assert found is not None and found[1] == sim.messages(OFFICE)[0].name
    assert restarted.post(alert(), outbox_key="alert:1:2") == found  # the same requestId returns the same message
    assert len(sim.messages(OFFICE)) == 1


def test_a_dropped_connection_after_the_create_leaves_one_message(sim, messenger):
    sim.fail("spaces.messages.create", 0, after=True)
    try:
        messenger.post(alert(), outbox_key="alert:1:2")
    except TryLater:
        pass  # either httplib2 retried with the same requestId or the outbox will: one message either way
    messenger.post(alert(), outbox_key="alert:1:2")
    assert len(sim.messages(OFFICE)) == 1


def test_find_answers_none_for_a_message_never_posted(sim, messenger):
    assert messenger.find(OFFICE, "alert:9:9", SINCE) is None
    assert messenger.find(SAM, "alert:9:9", SINCE) is None


def test_a_rate_limit_says_when_to_try_again(sim, messenger):
    sim.fail("spaces.messages.create", 429, retry_after=7)
    with pytest.raises(TryLater) as later:
        messenger.post(alert())
    assert later.value.retry_after == 7.0
    assert messenger.post(alert())[0] == OFFICE


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_passing(sim, messenger, status):
    sim.fail("spaces.messages.create", status)
    with pytest.raises(TryLater) as later:
        messenger.post(alert(), outbox_key="alert:1:2")
    assert later.value.maybe_sent and later.value.retry_after is None
    assert seen(sim, OFFICE) == []


def test_a_network_outage_is_passing_and_delivery_resumes(sim, messenger):
    messenger.post(Message(to=OFFICE, text="before", key="b"))
    sim.down()
    with pytest.raises(TryLater):
        messenger.post(alert())
    sim.up()
    messenger.post(alert())
    assert [m.text for m in sim.messages(OFFICE)] == ["before", "\U0001f6a8 *Sam* is 15 minutes late"]


def test_a_person_without_a_dm_is_undeliverable_until_they_add_the_app(sim, messenger):
    sim.no_dm_for(JO)
    with pytest.raises(Undeliverable, match="no_direct_message"):
        messenger.post(Message(to=JO, text="You are on call", key="d1"))
    sim.add_user(JO, "Jo Reid", dm=True)  # Jo adds the app: the next attempt gets through
    messenger.post(Message(to=JO, text="You are on call", key="d1"))
    assert seen(sim, JO) == ["You are on call"]


def test_an_unknown_space_or_a_bad_address_is_undeliverable(sim, messenger):
    with pytest.raises(Undeliverable):
        messenger.post(Message(to="spaces/GONE", text="hello", key="x"))
    with pytest.raises(Undeliverable):
        messenger.post(Message(to="C0SLACKID", text="hello", key="y"))


def test_a_patch_of_a_deleted_message_is_gone(sim, messenger):
    space, name = messenger.post(alert())
    sim.delete(name)
    with pytest.raises(Gone):
        messenger.update(space, name, Message(to=OFFICE, text="resolved"))


def test_a_refused_service_account_is_passing_and_marked_refused(sim):
    with SimChat() as stranger:  # a key the fake's token endpoint does not know
        credentials = stranger.credentials()
    credentials._token_uri = sim.token_uri
    with pytest.raises(TryLater) as later:
        ChatMessenger(credentials, sim.base_url).post(alert())
    assert later.value.refused


def test_two_databases_reusing_a_key_never_collide(sim):
    ChatMessenger(sim.credentials(), sim.base_url, key_namespace="db-a").post(alert(), outbox_key="alert:1:2")
    ChatMessenger(sim.credentials(), sim.base_url, key_namespace="db-b").post(alert(), outbox_key="alert:1:2")
    assert len(sim.messages(OFFICE)) == 2


def test_the_service_account_key_file_works_as_google_application_credentials(sim, tmp_path):
    path = sim.write_service_account(tmp_path / "key.json")
    messenger = ChatMessenger.from_service_account_file(str(path), sim.base_url)
    messenger.post(Message(to=OFFICE, text="hello", key="h"))
    assert seen(sim, OFFICE) == ["hello"]
