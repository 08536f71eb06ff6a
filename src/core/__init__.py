"""sansloop.core: the pure state machines of an event loop.

Nothing in this package makes a syscall, reads a clock or starts a thread
(DESIGN.md). Every machine is a documented public class that another framework
can drive with its own I/O.
"""
