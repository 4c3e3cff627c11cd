"""Coupon files as an attachment (/codes add, /codes list) and coupon milestones, through
the real bot: only managers import, a broken or too big file imports nothing, and a reader
who reaches the milestone gets a code by DM."""

from __future__ import annotations

from sandbox.discord import Attachment
from storage.schema import milestones, reward_codes, reward_pools
from tests.bots_discord.conftest import Discord
from tests.helpers.discord import bring_friends, hold_passes, member, rewards_on, rows, slash


async def test_a_manager_imports_a_file_into_a_pool_named_after_it(set_up: Discord) -> None:
    dc = set_up
    upload = Attachment("coffee.txt", content=b"KOPI-1\nKOPI-2\n\nKOPI-2\nKOPI-3\n")
    answer = await slash(dc, dc.owner, "codes add", {"file": upload})
    assert answer.ephemeral
    assert "Imported **3** codes into the pool coffee; 3 free now." in answer.content
    assert (
        "Skipped: 1 blank line, 1 repeated in the file, 0 already in the pool." in answer.content
    )
    assert "• coffee: 3 of 3 codes left" in answer.content
    [pool] = await rows(dc, reward_pools)
    assert pool["name"] == "coffee"
    assert sorted(r["code"] for r in await rows(dc, reward_codes)) == [
        "KOPI-1",
        "KOPI-2",
        "KOPI-3",
    ]

    again = Attachment("coffee.txt", content=b"KOPI-3\nKOPI-4\n")
    answer = await slash(dc, dc.owner, "codes add", {"file": again})
    assert "Imported **1** code into the pool coffee; 4 free now." in answer.content
    assert "1 already in the pool" in answer.content
    assert len(await rows(dc, reward_pools)) == 1
    listed = await slash(dc, dc.owner, "codes list")
    assert "• coffee: 4 of 4 codes left" in listed.content


async def test_a_member_without_manage_server_is_refused_and_nothing_changes(
    set_up: Discord,
) -> None:
    dc = set_up
    alice = await member(dc, "alice", "Alice")
    upload = Attachment("codes.txt", content=b"A1\nB2\n")
    answer = await slash(dc, alice, "codes add", {"file": upload})
    assert "Only a member with the Manage Server permission" in answer.content
    assert await rows(dc, reward_pools) == [] and dc.world.downloads == []
    listed = await slash(dc, alice, "codes list")
    assert "Only a member with the Manage Server permission" in listed.content


BROKEN = [
    (Attachment("codes.txt", content=b"\xff\xfe\x00binary"), "cannot be read as a list of codes"),
    (Attachment("codes.txt", content=b"OK-1\n" + b"X" * 80 + b"\n"), "too long or not printable"),
    (Attachment("codes.txt", content=b"\n\n  \n"), "holds no codes"),
    (Attachment("codes.pdf", content=b"A1\n"), "Send the codes as a .txt file"),
]


async def test_a_broken_file_is_refused_whole_with_a_clear_answer(set_up: Discord) -> None:
    dc = set_up
    for upload, said in BROKEN:
        answer = await slash(dc, dc.owner, "codes add", {"file": upload})
        assert said in answer.content, answer.content
        assert answer.ephemeral
    assert await rows(dc, reward_pools) == [] and await rows(dc, reward_codes) == []


async def test_a_file_too_big_is_refused_before_it_is_downloaded(set_up: Discord) -> None:
    dc = set_up
    upload = Attachment("codes.txt", size=6 * 1024 * 1024, content=b"A1\n")
    answer = await slash(dc, dc.owner, "codes add", {"file": upload})
    assert "too big" in answer.content and "5 MB" in answer.content
    assert dc.world.downloads == [] and await rows(dc, reward_pools) == []


async def test_a_coupon_milestone_gives_each_reader_their_own_code(set_up: Discord) -> None:
    dc = set_up
    await rewards_on(dc)
    await slash(
        dc, dc.owner, "codes add", {"file": Attachment("kopi.csv", content=b"code\nK1\nK2\n")}
    )
    unknown = await slash(
        dc, dc.owner, "milestone add", {"count": 1, "title": "Coffee", "pool": "tea"}
    )
    assert "There is no coupon pool called tea" in unknown.content
    both = await slash(
        dc,
        dc.owner,
        "milestone add",
        {"count": 1, "title": "Coffee", "pool": "kopi", "question": "?"},
    )
    assert "one kind of reward" in both.content
    assert await rows(dc, milestones) == []
    saved = await slash(
        dc, dc.owner, "milestone add", {"count": 1, "title": "Coffee", "pool": "KOPI"}
    )
    assert "Coffee" in saved.content and "coupon" in saved.content
    alice, carol = await member(dc, "alice", "Alice"), await member(dc, "carol", "Carol")
    await bring_friends(dc, alice, 1)
    await bring_friends(dc, carol, 1)
    await hold_passes(dc)
    codes = set()
    for reader in (alice, carol):
        dm = await dc.world.wait_for_dm(reader, contains="Your code", since=0)
        codes.update(code for code in ("K1", "K2") if f"`{code}`" in dm.content)
        assert dm.components == []  # Discord has no copy buttons: the code is in the text
    assert codes == {"K1", "K2"}
    listed = await slash(dc, dc.owner, "codes list")
    assert "• kopi: 0 of 2 codes left" in listed.content
