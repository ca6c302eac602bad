"""E-mail over SMTP: STARTTLS, then login, then one plain-text message per alert."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from icp_sync.alerts.base import AlertMessage, describe
from icp_sync.alerts.config import EmailConfig
from icp_sync.errors import AlertDeliveryError

__all__ = ["EmailSink"]


class EmailSink:
    """Sends alerts by SMTP to ``[alerts.email] to``.

    Args:
        config: The ``[alerts.email]`` section.
        tls: The TLS context for STARTTLS (default: verifying the server against
            ``ca_file``, else the system's CAs).
    """

    channel = "email"

    def __init__(self, config: EmailConfig, *, tls: ssl.SSLContext | None = None) -> None:
        self._config = config
        cafile = str(config.ca_file) if config.ca_file else None
        self._tls = tls or ssl.create_default_context(cafile=cafile)

    def message(self, alert: AlertMessage) -> EmailMessage:
        """The mail for ``alert``; its Message-ID derives from the delivery key."""
        headline, lines = describe(alert.payload)
        mail = EmailMessage()
        mail["Subject"] = headline
        mail["From"] = self._config.sender
        mail["To"] = ", ".join(self._config.to)
        domain = self._config.sender.rpartition("@")[2] or "icp-sync"
        mail["Message-ID"] = make_msgid(idstring=_token(alert.delivery_key), domain=domain)
        mail["X-ICP-Sync-Delivery"] = alert.delivery_key
        mail.set_content("\n".join(lines) + "\n")
        return mail

    def send(self, message: AlertMessage) -> None:
        """Connect, STARTTLS (unless turned off), log in (when configured) and send."""
        config = self._config
        try:
            with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
                if config.starttls:
                    smtp.starttls(context=self._tls)
                if config.username and config.password is not None:
                    smtp.login(config.username, config.password.get_secret_value())
                smtp.send_message(self.message(message))
        except (smtplib.SMTPException, OSError) as exc:
            raise AlertDeliveryError(f"SMTP delivery failed: {type(exc).__name__}: {exc}") from None


def _token(key: str) -> str:
    return "".join(c if c.isalnum() else "." for c in key)[:60]
