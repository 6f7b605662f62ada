"""Costs in micro-dollars: billed, reference, worst case and the local shadow cost."""

from __future__ import annotations

from decimal import Decimal

from gateway.accounting.cost import Costing, ThroughputMeter
from gateway.accounting.model import to_micros, to_usd
from gateway.accounting.pricing import Price
from tests.support.deployments import local, paid

GPT_4O = Price.per_million(Decimal("2.50"), Decimal("10.00"))


def test_paid_tokens_are_billed_at_the_deployment_price_to_the_micro_dollar() -> None:
    costing = Costing(GPT_4O, [paid()])
    # 1000 in at $0.15/M + 2000 out at $0.60/M = $0.00015 + $0.0012 = $0.00135
    assert costing.billed_micros(paid(), 1000, 2000) == 1350


def test_local_tokens_bill_nothing_but_carry_the_reference_cost() -> None:
    costing = Costing(GPT_4O, [local()])
    assert costing.billed_micros(local(), 1000, 2000) == 0
    assert costing.reference_micros(1000, 2000) == 22_500  # $0.0025 + $0.02


def test_micro_dollars_round_half_up_once_per_record() -> None:
    assert to_micros(Decimal("0.0000005")) == 1
    assert to_micros(Decimal("0.00000049")) == 0
    assert to_usd(1_500_000) == Decimal("1.5")


def test_worst_case_is_the_priciest_deployment_of_the_plan() -> None:
    dear = paid("dear")
    costing = Costing(GPT_4O, [local(), paid(), dear])
    plan = [local(), paid()]
    assert costing.worst_case_micros(plan, 100, 1000) == costing.billed_micros(paid(), 100, 1000)
    assert costing.worst_case_micros([local()], 100, 1000) == 0
    assert costing.worst_case_micros([], 100, 1000) == 0


def test_throughput_counts_overlapping_requests_once_in_busy_time() -> None:
    meter = ThroughputMeter()
    assert meter.tokens_per_s() is None
    meter.observe(0.0, 2.0, 100)  # busy 0..2
    meter.observe(1.0, 3.0, 100)  # overlaps: busy until 3
    rate = meter.tokens_per_s()
    assert rate is not None
    assert abs(rate - 200 / 3.0) < 0.5  # 200 tokens over 3 busy seconds (decay is tiny)


def test_shadow_cost_is_gpu_time_at_measured_throughput() -> None:
    worker = local()  # $3.99 per GPU hour
    costing = Costing(GPT_4O, [worker])
    # 1000 tokens in 10 busy seconds: 100 tok/s, so 1000 tokens took 10 GPU-seconds.
    shadow = costing.shadow_micros(worker, 1000, 0.0, 10.0)
    assert shadow == to_micros(Decimal("3.99") / 3600 * 10)
    assert costing.shadow_micros(paid(), 1000, 0.0, 10.0) == 0
