"""Strategies of the autoscaling API group."""

from timonel.kinds.autoscaling.horizontalpodautoscaler import HorizontalPodAutoscalerStrategy
from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = (HorizontalPodAutoscalerStrategy,)
