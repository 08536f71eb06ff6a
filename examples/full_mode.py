"""Full mode: asyncio's API where every object is sansloop's own.

Run it with::

    python examples/full_mode.py

The only change from an ordinary asyncio program is the import line. The loop
is a sansloop loop in full mode; the tasks, futures, queues and locks are
sansloop's core machines (``sansloop.core``), while the exceptions are the
stdlib's own classes, so ``except asyncio.CancelledError`` means what it always
did. ``Queue.shutdown()`` (Python 3.13 API) works here on 3.11 and 3.12 too.
"""

import sansloop.compat as asyncio


async def square(name: str, queue: asyncio.Queue, results: list) -> None:
    while True:
        try:
            number = await queue.get()
        except asyncio.QueueShutDown:
            return  # the queue is shut down and drained: this worker is done
        results.append((number, number * number))
        queue.task_done()


async def main() -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    print(f"loop: {type(loop).__module__}.{type(loop).__name__} (mode={loop.mode})")
    print(f"task: {type(task).__module__}.{type(task).__name__}")

    queue: asyncio.Queue = asyncio.Queue()
    print(f"queue: {type(queue).__module__}.{type(queue).__name__}")
    results: list = []
    async with asyncio.TaskGroup() as group:
        for i in range(3):
            group.create_task(square(f"worker-{i}", queue, results))
        for number in range(1, 10):
            queue.put_nowait(number)
        await queue.join()
        queue.shutdown()  # wakes the idle workers with QueueShutDown
    print("squares:", [square for _, square in sorted(results)])

    try:
        async with asyncio.timeout(0.01):
            await asyncio.Event().wait()
    except TimeoutError:
        print("timeout: the wait was cancelled after 0.01 s")


if __name__ == "__main__":
    asyncio.run(main())
