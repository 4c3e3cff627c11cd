"""The Discord adapter: :class:`~bots.discord.app.ReferralBot` (discord.py 2), one cog per
feature, the invite tracker and the Discord side of the platform port."""
