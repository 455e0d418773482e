"""A plugin that defines no hook at all (a typo'd name, say)."""


def on_subtitle_writen(result: object) -> None:  # misspelt on purpose
    pass
