"""Print each text message of ComfyUI's websocket ``/ws`` as one JSON line on stdout.

Runs with ComfyUI's Python, which has aiohttp (one of ComfyUI's own requirements), so the
command line and the tests need no websocket client of their own.
Usage: python ws_listener.py ws://127.0.0.1:PORT/ws?clientId=ID
"""

import asyncio
import sys

import aiohttp


async def listen(url: str):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, heartbeat=30) as socket:
            async for message in socket:
                # Binary messages are preview images: not needed here.
                if message.type == aiohttp.WSMsgType.TEXT:
                    print(message.data, flush=True)


if __name__ == "__main__":
    asyncio.run(listen(sys.argv[1]))
