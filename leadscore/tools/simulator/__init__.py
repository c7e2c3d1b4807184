"""A simulated CRM whose hidden truth is known: the embedded default data and quality yardstick."""

from leadscore.tools.simulator.simulate import SimulationSummary, simulate

__all__ = ["SimulationSummary", "simulate"]
