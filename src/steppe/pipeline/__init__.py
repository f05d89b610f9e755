"""The one pipeline of both modes: a step (``step.PipelineStep``) run over an injected environment.

The twin and the live hub run the same step object; what differs is injected (SimPy's idea of
one run loop for simulated and real time):

| | twin | live hub |
|---|---|---|
| environment | ``twin.engine.SimulatedEnvironment`` (event heap) | ``environment.WallClock`` |
| executor | ``executors.fake`` | ``executors`` by name (``local``, ``mock``) |
| hooks | ``twin.arrivals.TraceArrivals`` | ``control.loop.HubLoop`` (inbox, store) |

``endings`` decides how a job ends (from the stop's intent, or the exit) in both modes.
"""

from steppe.pipeline.endings import Ending, exit_ending, intent_ending
from steppe.pipeline.environment import WallClock
from steppe.pipeline.step import PipelineStep, StepHooks

__all__ = ["Ending", "PipelineStep", "StepHooks", "WallClock", "exit_ending", "intent_ending"]
