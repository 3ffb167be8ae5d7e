"""Python's `websockets` client against the echo server with `--deflate --prefix ''`.

`websockets` offers permessage-deflate by default (with client_max_window_bits); this checks it
is negotiated and that large, small, binary, fragmented and pipelined messages, pings and a
message over the size limit (1009) all behave. Run by `cargo xtask test`, which installs
`websockets` into a venv under target/:

    python websockets_client.py ws://127.0.0.1:PORT/
"""

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError
from websockets.extensions.permessage_deflate import PerMessageDeflate


async def main(url: str) -> None:
    async with connect(url, max_size=4 << 20) as ws:
        extensions = ws.protocol.extensions
        assert any(isinstance(e, PerMessageDeflate) for e in extensions), extensions

        big = '{"id": 1, "name": "echo", "tags": ["a", "b"]} ' * 2000
        await ws.send(big)
        assert await ws.recv() == big, "a large compressed text message"

        await ws.send("small")
        assert await ws.recv() == "small"

        data = bytes(range(256)) * 300
        await ws.send(data)
        assert await ws.recv() == data, "binary"

        await ws.send(["fragment " * 500, "and another " * 500])
        assert await ws.recv() == "fragment " * 500 + "and another " * 500

        messages = [f"pipelined {i} " * (i * 50) for i in range(20)]
        for message in messages:
            await ws.send(message)
        for message in messages:
            assert await ws.recv() == message, "pipelined, in order"

        await asyncio.wait_for(await ws.ping(), 5)

    async with connect(url, max_size=4 << 20) as ws:
        # 1 MiB + 1 of zeros compresses to about 1 KiB: the inflated size is what counts.
        await ws.send(b"\0" * ((1 << 20) + 1))
        try:
            await asyncio.wait_for(ws.recv(), 5)
            raise AssertionError("no close for a message over the limit")
        except ConnectionClosedError as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1009, closed

    print("websockets interop: ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
