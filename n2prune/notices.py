"""Notices said once per process: an accepted argument that has no effect here."""

_SAID = set()


def notice_once(logger, message):
    """Log ``message`` at INFO as a notice, the first time it is given; later calls say nothing."""
    if message not in _SAID:
        _SAID.add(message)
        logger.info("notice: %s", message)


def notice_unused(logger, owner, given, defaults, why):
    """A notice, once, for each ``given`` argument (name -> value) that is not its default."""
    for name, value in given.items():
        if value != defaults[name]:
            notice_once(logger, f"{owner}({name}={value!r}) is accepted and ignored ({why})")
