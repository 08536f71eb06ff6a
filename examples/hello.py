"""A small, unmodified asyncio program: it imports only ``asyncio``.

Run it on sansloop with::

    python -m sansloop run examples/hello.py

and on stdlib asyncio with ``python examples/hello.py``; the results are the
same, only the loop line differs.

It runs a producer/consumer pipeline through an ``asyncio.Queue`` with three
consumers gathered together, hashes in a worker thread (``asyncio.to_thread``),
and gives up on a deliberately slow step with ``asyncio.timeout``.
"""

import asyncio
import hashlib
import sys


def digest(word: str) -> str:
    """Blocking work, run in a thread: the first 8 hex digits of a SHA-256."""
    return hashlib.sha256(word.encode()).hexdigest()[:8]


async def produce(queue: asyncio.Queue, words: list[str], consumers: int) -> None:
    for word in words:
        await queue.put(word)
    for _ in range(consumers):
        await queue.put(None)  # one stop marker per consumer


async def consume(queue: asyncio.Queue, results: dict[str, str]) -> int:
    handled = 0
    while (word := await queue.get()) is not None:
        results[word] = await asyncio.to_thread(digest, word)
        handled += 1
    return handled


async def slow_step() -> str:
    await asyncio.sleep(10)
    return "finished"  # never reached: the timeout below is much shorter


async def main(words: list[str]) -> None:
    loop = asyncio.get_running_loop()
    print(f"event loop: {type(loop).__module__}.{type(loop).__qualname__}")

    queue: asyncio.Queue = asyncio.Queue(maxsize=2)
    results: dict[str, str] = {}
    consumers = 3
    started = loop.time()
    counts = await asyncio.gather(
        produce(queue, words, consumers),
        *(consume(queue, results) for _ in range(consumers)),
    )
    print(f"{sum(counts[1:])} words hashed by {consumers} consumers")
    for word in words:
        print(f"  sha256({word!r}) = {results[word]}")

    try:
        async with asyncio.timeout(0.05):
            await slow_step()
    except TimeoutError:
        print("slow step cancelled after 0.05 s timeout")
    print(f"done in {loop.time() - started:.2f} s of loop time")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["hello", "sans", "io", "loop"]))
