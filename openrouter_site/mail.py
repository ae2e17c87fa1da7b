"""The console mail backend of the embedded default: each message framed, its links called out.

Without an SMTP server the verification and invitation links exist only in the server's console;
Django's plain console backend prints them inside a wall of MIME headers, where a newcomer misses them.
"""

from __future__ import annotations

import re

from django.core.mail.backends.console import EmailBackend
from django.core.mail.message import EmailMessage

LINK = re.compile(r"https?://\S+")
BAR = "=" * 72


def message_banner(message: EmailMessage) -> str:
    """The framed text printed for one message: recipients, subject, body, then its links again."""
    body = str(message.body)
    links = LINK.findall(body)
    lines = [BAR, f"EMAIL to {', '.join(message.to)}: {message.subject}", BAR, body.rstrip(), ""]
    if links:
        lines += [BAR, *(f">>> Open this link: {link}" for link in links)]
    lines.append(BAR)
    return "\n".join(lines) + "\n"


class ConsoleEmailBackend(EmailBackend):
    def write_message(self, message: EmailMessage) -> None:
        self.stream.write(message_banner(message))
