"""An event file written by TensorBoard's own record writer and protobuf messages, for dtrain's
TensorBoard writer to reproduce byte for byte.

Writes Tests/DTrainTrainingTests/Fixtures/tensorboard/events.fixture: the file-version record,
then three scalar events (step 0, a small step, a large step; a negative value, a tiny one and
a NaN among the values), each with a fixed wall time.

    python3 -m venv /tmp/tb && /tmp/tb/bin/pip install tensorboard
    /tmp/tb/bin/python Tests/FixtureScripts/tensorboard_fixture.py
"""
import os

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "DTrainTrainingTests", "Fixtures",
                   "tensorboard", "events.fixture")


def scalars(step, wall_time, values):
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values])
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary)


events = [
    event_pb2.Event(wall_time=1700000000.5, file_version="brain.Event:2"),
    scalars(0, 1700000001.25, [("train/loss", 2.302585), ("train/top1", 0.0)]),
    scalars(7, 1700000002.0, [("train/loss", -1.5), ("lr", 1e-3), ("time/allreduce_wait_rank1", 0.125)]),
    scalars(123456789, 1700000003.75, [("val/loss", float("nan")), ("val/top5", 1.0)]),
]
with open(OUT, "wb") as f:
    writer = RecordWriter(f)
    for e in events:
        writer.write(e.SerializeToString())
    writer.flush()
print(OUT, os.path.getsize(OUT), "bytes")
