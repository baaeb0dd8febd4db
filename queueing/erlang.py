"""Erlang C for an M/M/c queue: the textbook answer the simulator is checked against."""

from __future__ import annotations

import math


def probability_of_waiting(servers: int, offered_load: float) -> float:
    """Erlang C: the chance an arrival waits, with ``offered_load`` = arrival rate × mean
    handling time (in Erlangs). 1.0 when the load reaches the number of servers."""
    if offered_load >= servers:
        return 1.0
    top = offered_load**servers / math.factorial(servers) * servers / (servers - offered_load)
    bottom = sum(offered_load**k / math.factorial(k) for k in range(servers)) + top
    return top / bottom


def mean_wait(servers: int, arrivals_per_second: float, mean_handling: float) -> float:
    """Expected wait in seconds (infinite when the queue cannot keep up)."""
    load = arrivals_per_second * mean_handling
    if load >= servers:
        return math.inf
    return probability_of_waiting(servers, load) * mean_handling / (servers - load)


def probability_wait_exceeds(
    servers: int, arrivals_per_second: float, mean_handling: float, seconds: float
) -> float:
    """The chance an arrival waits longer than ``seconds`` (M/M/c, first come first served)."""
    load = arrivals_per_second * mean_handling
    if load >= servers:
        return 1.0
    c = probability_of_waiting(servers, load)
    return c * math.exp(-(servers - load) * seconds / mean_handling)


def servers_for_wait_quantile(
    arrivals_per_second: float,
    mean_handling: float,
    target_seconds: float,
    quantile: float = 0.9,
    most: int = 200,
) -> int:
    """The fewest servers for which the ``quantile`` of the wait is within the target."""
    for servers in range(1, most + 1):
        exceeds = probability_wait_exceeds(
            servers, arrivals_per_second, mean_handling, target_seconds
        )
        if exceeds <= 1 - quantile:
            return servers
    return most
