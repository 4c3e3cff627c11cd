"""The Telegram adapter (aiogram 3): the bot and its update loop (``app``), a router per
feature (``handlers``), typed button payloads (``callbacks``), the per-update answers
(``context``) and the Telegram side of the platform port (``port``)."""
