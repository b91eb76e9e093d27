"""Strategies of the autoscaling API group: v2 (the preferred version, which the store keeps)
and v1 over it."""

from timonel.kinds.autoscaling.horizontalpodautoscaler import HorizontalPodAutoscalerStrategy
from timonel.kinds.autoscaling.horizontalpodautoscaler_v1 import (
    HorizontalPodAutoscalerV1Strategy,
)
from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = (
    HorizontalPodAutoscalerStrategy,
    HorizontalPodAutoscalerV1Strategy,
)
