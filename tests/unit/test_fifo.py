"""The FIFO between readers and writers with several files in flight (fifo.py)."""

from dataclasses import dataclass

import pytest

from fastsync.fifo import BlockFifo
from fastsync.errors import Interrupted


@dataclass(eq=False)
class Job:
    name: str
    writer: int | None = None


@dataclass
class Block:
    job: Job
    offset: int
    last: bool = False


def alive():
    return True


def dead():
    return False


def test_a_files_blocks_all_go_to_the_writer_that_took_its_first_block_in_order():
    fifo = BlockFifo(capacity=10, share=10, producers=1)
    a, b = Job("a"), Job("b")
    for block in (Block(a, 0), Block(a, 1), Block(b, 0, last=True), Block(a, 2, last=True)):
        fifo.put(block, alive)
    first = fifo.get(0, alive)
    assert (first.job, first.offset) == (a, 0)
    # writer 1 passes over a's blocks (writer 0 holds a) and takes b
    assert fifo.get(1, alive).job is b
    assert [(blk.job.name, blk.offset) for blk in (fifo.get(0, alive), fifo.get(0, alive))] \
        == [("a", 1), ("a", 2)]
    assert a.writer is None         # released with its last block
    fifo.producer_done()
    assert fifo.get(0, alive) is None and fifo.get(1, alive) is None


def test_a_writer_waits_rather_than_take_a_block_another_writer_holds():
    fifo = BlockFifo(capacity=10, share=10, producers=1)
    a = Job("a")
    fifo.put(Block(a, 0), alive)
    fifo.put(Block(a, 1, last=True), alive)
    assert fifo.get(0, alive).offset == 0
    # the producer has died (a bug): writer 1 gives up instead of stealing a's block
    assert fifo.get(1, dead) is None
    assert fifo.get(0, alive).offset == 1


def test_one_file_may_fill_only_its_share_of_the_queue():
    fifo = BlockFifo(capacity=4, share=2, producers=1)
    big, small = Job("big"), Job("small")
    fifo.put(Block(big, 0), alive)
    fifo.put(Block(big, 1), alive)
    with pytest.raises(Interrupted):        # would wait for a slot; no writer is left
        fifo.put(Block(big, 2), dead)
    fifo.put(Block(small, 0, last=True), alive)   # other files still get in
    assert len(fifo) == 3
    fifo.get(0, alive)
    fifo.put(Block(big, 2), alive)          # a slot of its share came free


def test_the_whole_queue_is_bounded_by_capacity():
    fifo = BlockFifo(capacity=2, share=2, producers=1)
    fifo.put(Block(Job("a"), 0, last=True), alive)
    fifo.put(Block(Job("b"), 0, last=True), alive)
    with pytest.raises(Interrupted):
        fifo.put(Block(Job("c"), 0, last=True), dead)


def test_the_stream_ends_when_every_producer_is_done():
    fifo = BlockFifo(capacity=2, share=2, producers=2)
    fifo.producer_done()
    fifo.put(Block(Job("a"), 0, last=True), alive)
    assert fifo.get(0, alive).job.name == "a"
    fifo.producer_done()
    assert fifo.get(0, alive) is None
