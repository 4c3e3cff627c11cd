"""Run a sandbox Bot API server with a small world: ``python -m sandbox [--port 8081]``.

It prints the bot token and the base URL; point a bot at them with
``AiohttpSession(api=TelegramAPIServer.from_base(url))``. The world has an owner, two
readers, the bot (an administrator of a private supergroup and a public channel).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from sandbox.server import SandboxServer
from sandbox.world import World

logger = logging.getLogger(__name__)


def build_demo_world(bot_username: str, token: str | None, seed: int | None) -> World:
    """A world with people, a bot, a private supergroup and a public channel."""
    world = World(seed=seed)
    owner = world.add_user("Olivia", "olivia_creator")
    world.add_user("Alice", "alice_reader")
    world.add_user("Budi", "budi_reader", language_code="id")
    bot = world.add_bot(bot_username, token=token)
    group = world.add_chat("supergroup", "Readers' lounge", owner=owner)
    channel = world.add_chat("channel", "The Newsletter", "the_newsletter", owner=owner)
    world.add_bot_to_chat(group, bot, by=owner)
    world.add_bot_to_chat(channel, bot, by=owner)
    return world


async def serve(port: int, world: World) -> None:
    """Serve until cancelled."""
    async with SandboxServer(world, port=port) as server:
        bot = world.all_bots()[0]
        print(f"Bot API base URL: {server.url}")
        print(f"token: {bot.token}  (@{bot.username})")
        for chat in world.chats.values():
            print(f"chat {chat.id}: {chat.type} {chat.title!r}")
        await asyncio.Event().wait()


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--bot", default="inviteloop_demo_bot", help="the bot's username")
    parser.add_argument("--token", default=None, help="use this token instead of a new one")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    world = build_demo_world(args.bot, args.token, args.seed)
    try:
        asyncio.run(serve(args.port, world))
    except KeyboardInterrupt:
        logger.info("stopped")


if __name__ == "__main__":
    main()
