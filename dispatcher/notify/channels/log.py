"""`log`: the rendered message goes to the sender's log (logger nightshift.notify), the demo's default.

The channel named 'default' needs no row: without one it is a log channel, so a fresh install's
findings are at least visible in the dispatcher's output.
"""

from __future__ import annotations

import logging

from dispatcher.notify.channels import Channel, Delivery, Outgoing, register

log = logging.getLogger("nightshift.notify")


@register("log")
class LogChannel(Channel):
    async def send(self, outgoing: Outgoing) -> Delivery:
        text = self.renderer.render_document("message.txt.j2", outgoing.messages, outgoing.heading)
        log.info("notification to %s:\n%s", self.name, text.rstrip(),
                 extra={"event": "notify_log", "channel": self.name,
                        "notifications": [m.notification_id for m in outgoing.messages]})
        return Delivery(ok=True, response="logged")
