"""The worker side: inbox -> pipeline (dialogue, log, outbox) -> channel, and the pool that runs it."""
