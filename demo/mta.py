"""The demo's destination MTA: aiosmtpd on loopback that stores each message it accepts in a directory
and refuses recipients at nobody@ with 550, so the log shows per-recipient codes."""
import asyncio
import pathlib
import sys

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("nobody@"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = self.dir / f"message-{self.count}.eml"
        head = f"X-Demo-Envelope: from={envelope.mail_from} to={','.join(envelope.rcpt_tos)}\r\n"
        path.write_bytes(head.encode() + envelope.original_content)
        return "250 2.0.0 stored as " + path.name


def main():
    host, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    controller = Controller(Store(directory), hostname=host, port=port, decode_data=False,
                            server_hostname="mta.demo.test")
    controller.start()
    print(f"mta: listening on {host}:{port}, storing in {directory}", flush=True)
    try:
        asyncio.run(asyncio.sleep(600))
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
