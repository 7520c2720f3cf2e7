"""Per-group pruning ratios that meet a cost budget with the least predicted accuracy loss.

The inputs are sensitivity curves: for each group (a channel group or a
cell) the accuracy drop measured with that group alone pruned at each
ratio. As in layer-wise sensitivity analysis (Han et al., "Learning both
Weights and Connections", 2015; seed 003's notes), the loss of pruning
several groups is *predicted* as the sum of their own drops: groups are
assumed not to interact. The cost (MACs or parameters kept, a fraction of
dense) is not assumed additive: ``cost(choice)`` is asked for every
candidate, so a consumer cell shared by two channel groups is counted once.

The search is greedy: from every group unpruned, repeatedly move the one
group to the higher measured ratio that buys the most cost per unit of
predicted loss (the least ``Δdrop / Δcost``), until the budget is met. Any
higher ratio is a candidate, not only the next one, so a curve that is flat
after a bump is not stuck behind it. Such a jump may overshoot the budget,
so a last pass lowers each group to the ratio of least drop that still
meets it.
"""

from n2prune.errors import UserError


def choose_ratios(curves, cost, limit):
    """``(choice, cost)``: ``{group: ratio}`` (0 for groups left alone) and its cost.

    ``curves``: ``{group: [(ratio, drop), ...]}`` with ratios in (0, 1);
    ``cost(choice)``: the fraction of dense the network keeps with those
    ratios; ``limit``: the fraction to reach (``cost <= limit``).
    """
    choice = {group: 0.0 for group in curves}
    current = cost(choice)
    while current > limit:
        best = _best_move(curves, cost, choice, current)
        if best is None:
            raise UserError(f"no measured ratios reach a budget of {limit:.1%}: the most pruning "
                            f"measured keeps {current:.1%}; raise the target or measure higher "
                            "--ratios (up to 0.95), or more cells")
        _, group, ratio, current = best
        choice[group] = ratio
    return _relax(curves, cost, limit, choice, current)


def predicted_drop(curves, choice):
    """The sum of the chosen points' drops (0 for a group left unpruned)."""
    return sum(_drop_at(curves[group], ratio) for group, ratio in choice.items())


def _drop_at(points, ratio):
    return 0.0 if ratio == 0 else dict(points)[ratio]


def _relax(curves, cost, limit, choice, current):
    """Each group, in turn, moved down to the lower ratio of least drop within the budget."""
    for group, points in curves.items():
        now = _drop_at(points, choice[group])
        lower = [(drop, ratio) for ratio, drop in [(0.0, 0.0), *points]
                 if ratio < choice[group] and drop < now]
        for drop, ratio in sorted(lower):
            after = cost({**choice, group: ratio})
            if after <= limit:
                choice, current = {**choice, group: ratio}, after
                break
    return choice, current


def _best_move(curves, cost, choice, current):
    """``(score, group, ratio, new cost)`` of the cheapest loss per cost saved, or None."""
    best = None
    for group, points in curves.items():
        now = _drop_at(points, choice[group])
        for ratio, drop in points:
            if ratio <= choice[group]:
                continue
            after = cost({**choice, group: ratio})
            saved = current - after
            if saved <= 0:
                continue
            score = (drop - now) / saved
            if best is None or score < best[0]:
                best = (score, group, ratio, after)
    return best
