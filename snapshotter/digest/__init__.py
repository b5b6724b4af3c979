"""The change digest: a saved diff run told as an email, for the people who never run the tool.

`content` reads what the message says from `changes.db` (filtered by the privacy level there, so
no template can show what it was not given), `message` renders it through the package's Jinja2
templates into a text and an HTML part, `smtp` sends it.
"""
