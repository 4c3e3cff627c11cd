"""Typed, prefixed button payloads (each packs to ≤ 64 bytes)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class PickProgram(CallbackData, prefix="pk"):
    action: str
    program_id: int
    label: str = ""
    reset: bool = False


class StatsPage(CallbackData, prefix="sp"):
    program_id: int
    page: int


class Forget(CallbackData, prefix="fg"):
    confirm: bool


class Setup(CallbackData, prefix="su"):
    chat_id: int


class HumanCheck(CallbackData, prefix="hc"):
    program_id: int


class Setting(CallbackData, prefix="st"):
    program_id: int
    key: str
