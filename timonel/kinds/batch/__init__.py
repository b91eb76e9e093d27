"""Strategies of the batch API group, in the order kube-apiserver's discovery lists them."""

from timonel.kinds.base import Strategy
from timonel.kinds.batch.cronjob import CronJobStrategy
from timonel.kinds.batch.job import JobStrategy

STRATEGIES: tuple[type[Strategy], ...] = (CronJobStrategy, JobStrategy)
