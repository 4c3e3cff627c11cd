"""The chat adapters and what they share: ``views`` (the data each template receives),
``render`` (the templates in each platform's escaping flavour) and ``telegram`` (the
aiogram adapter). Adapters call the engine's services; they never open transactions."""
