"""The one pipeline of both modes: a step (``step.PipelineStep``) run over an injected environment.

The twin and the live hub run the same step object; what differs is injected (SimPy's idea of
one run loop for simulated and real time):

| | twin | live hub |
|---|---|---|
| environment | ``twin.engine.SimulatedEnvironment`` (event heap) | ``environment.WallClock`` |
| executor | ``executors.fake`` | ``executors`` by name (``local``, ``mock``) |
| intake | ``twin.arrivals.TraceArrivals`` | ``control.loop.HubLoop`` (inbox) |
| recorder | none (state listeners) | ``control.loop.HubLoop`` (store) |

``endings`` decides how a job ends (from the stop's intent, or the exit) in both modes.
"""

from steppe.pipeline.endings import Ending, exit_ending, intent_ending
from steppe.pipeline.environment import WallClock
from steppe.pipeline.step import Intake, PipelineStep, Recorder

__all__ = ["Ending", "Intake", "PipelineStep", "Recorder", "WallClock", "exit_ending", "intent_ending"]
