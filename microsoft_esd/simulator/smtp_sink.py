"""An SMTP server on 127.0.0.1 that accepts every email and records its arrival, subject and
recipients, never its body: where the tests and the checkout benchmark point Odoo's outgoing
mail, so that emails really leave Odoo (a test's own mail server refuses connections)."""

import email
import email.policy
import socketserver
import threading
import time


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough of SMTP for Odoo's smtplib client: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        self.reply("220 esd-sink ESMTP")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.reply("250 esd-sink")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.reply("250 OK")
            elif verb == b"DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                self.server.received(time.time(), b"".join(lines))
                self.reply("250 OK queued")
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class SmtpSink(socketserver.ThreadingTCPServer):
    """Records when each email arrives, its subject and recipients; never its body."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, describe=None):
        """``describe(subject)``: more facts to record about each email (a dict)."""
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.lock = threading.Lock()
        self.emails = []
        self._describe = describe
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]

    def received(self, arrival, data):
        message = email.message_from_bytes(data, policy=email.policy.default)
        subject = " ".join(str(message.get("Subject", "")).split())
        described = {"arrival": arrival, "subject": subject, "to": str(message.get("To", ""))}
        if self._describe:
            described.update(self._describe(subject))
        with self.lock:
            self.emails.append(described)

    def since(self, start):
        with self.lock:
            return [mail for mail in self.emails if mail["arrival"] >= start]
