"""Write the example notebooks in ``examples/`` and store them executed, so they read well on GitHub.

The notebooks are the deliverable; this script is how they are kept consistent. Edit the cells here, then run

    python examples/_build_notebooks.py                 # write and execute all three (about 2 minutes)
    python examples/_build_notebooks.py 02              # only the notebooks whose name contains "02"
    python examples/_build_notebooks.py --no-execute    # write without outputs

Each notebook runs in a fresh ``python3`` kernel inside a temporary directory (nothing is written next to
it) with the default ``SAMPLE`` (``UPLIFT_SAMPLE`` is removed from the kernel's environment), and the
wall time of every notebook is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from textwrap import dedent

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(dedent(text).strip())


def code(*parts: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell("\n\n".join(dedent(part).strip() for part in parts))


# Shared by the three notebooks: numbers with units and 95% CIs are printed as the package prints them
# (uplift._display): the estimate, its interval in brackets, then the unit.
FORMAT_HELPERS = '''
def pp(est, lo, hi):
    """An effect on a probability (visit, conversion) in percentage points, with its 95% CI."""
    return fmt_effect(est, lo, hi, "binary")


def usd(est, lo=None, hi=None, digits=0, sign=False):
    """Dollars, optionally with a 95% CI; sign=True shows "+" on gains."""
    return fmt_money(est, lo, hi, currency="$", signed=sign, digits=digits)


def pct(est, lo=None, hi=None):
    """A ratio (relative lift, ROI) in percent, optionally with a 95% CI."""
    return fmt_pct(est, lo, hi)
'''


# ------------------------------------------------------------------------------------------------------------
# 01: the Hillstrom e-mail A/B test
def email_ab_test() -> list:
    return [
        md("""
        # Did the e-mail campaign work, for whom, and whom should we e-mail next time?

        In spring 2008 an online retailer (Kevin Hillstrom's *MineThatData* challenge) took 64,000 customers
        who had bought in the last twelve months and split them **at random** into three groups of equal
        size: one got an e-mail featuring **men's** merchandise, one an e-mail featuring **women's**
        merchandise, and one got **no e-mail** (the control group). For two weeks afterwards the retailer
        recorded who **visited** the website, who **bought** (conversion) and how much they **spent**.

        The data ship with `uplift` (`uplift.datasets.load_hillstrom()`), so this notebook runs offline.
        We answer the questions a campaign analyst gets asked, in order:

        1. **Was the test run properly?** Design checks: arm sizes and balance.
        2. **Did the campaign work?** The average effect of each e-mail, with 95% confidence intervals.
        3. **For whom?** Effects in segments we choose, segments a tree discovers, and what drives the model.
        4. **Whom should we e-mail next time, and what is that worth?** A budgeted targeting list, valued
           honestly and compared with e-mailing everyone or a random selection.

        **Runtime knob.** `SAMPLE` below is the number of customers analysed. The default, all 64,000,
        runs in about half a minute on two CPU cores; set the environment variable `UPLIFT_SAMPLE` (for
        example `UPLIFT_SAMPLE=8000`) for a quicker run with wider confidence intervals. Every number printed
        below is computed, so the text stays true whatever the sample; the comments in the prose describe
        the full data.
        """),
        code('''
        import os
        import time
        import warnings

        import numpy as np
        import pandas as pd
        from IPython.display import display

        from uplift import Study, load_hillstrom, targeting
        from uplift._display import fmt_ci, fmt_effect, fmt_money, fmt_pct
        from uplift.viz import plots as plot

        %matplotlib inline
        warnings.filterwarnings("ignore", message="IProgress not found")  # a notice from shap's progress bar

        # SAMPLE: customers analysed (default: all 64,000, about 30 s on 2 cores). Override with the environment
        # variable UPLIFT_SAMPLE, e.g. UPLIFT_SAMPLE=8000, for a faster run with wider confidence intervals.
        SAMPLE = int(os.environ.get("UPLIFT_SAMPLE", 64_000))
        SEED = 0
        started = time.perf_counter()
        pd.set_option("display.max_columns", 30, "display.width", 160, "display.max_colwidth", 120,
                      "display.precision", 3)
        ''', FORMAT_HELPERS),
        md("""
        ## The data

        One row per customer. Everything except `segment` (which e-mail they got) and the three outcomes was
        recorded *before* the campaign, so it can describe customers without being changed by the e-mail:
        months since the last purchase (`recency`), dollars spent last year (`history`, and its bucket
        `history_segment`), whether they bought men's / women's merchandise (`mens`, `womens`), `zip_code`
        area, whether they are new this year (`newbie`) and the `channel` they bought from.
        """),
        code('''
        emails = load_hillstrom()
        if SAMPLE < len(emails):
            emails = emails.sample(SAMPLE, random_state=SEED).reset_index(drop=True)
        print(f"{len(emails):,} customers")
        display(emails.head())

        by_arm = emails.groupby("segment", observed=True)
        pd.DataFrame({
            "customers": by_arm.size().map("{:,}".format),
            "visited": by_arm["visit"].mean().map("{:.2%}".format),
            "bought": by_arm["conversion"].mean().map("{:.2%}".format),
            "spend per customer": by_arm["spend"].mean().map("${:.3f}".format),
        })
        '''),
        md("""
        The raw rates already suggest that both e-mails raised visits. Before trusting that comparison we
        check that the groups are comparable, and we attach a confidence interval to every difference.

        ## 1. Was the test run properly?

        We describe the campaign to `uplift` once, as a `Study`: which column is the treatment, which is the
        control label, which columns are outcomes. Every other column becomes a feature. `fit()` then runs
        the design checks and cross-fits the uplift models (section 3 explains those). We keep the learner
        list short (`t`, `x`, `dr` and their stacked ensemble) and use 3 folds so the notebook stays quick.

        Two checks tell whether the randomisation worked:

        * **Sample-ratio mismatch (SRM).** The split was planned as one third each. A chi-square test asks
          whether the observed group sizes are further from that than chance allows. A failure usually means
          a bug in assignment or logging (for example, e-mails that bounced were dropped from one group), and
          then no comparison between the groups can be trusted. `fit()` stops in that case.
        * **Balance.** If the groups were drawn at random, nothing known before the campaign can tell them
          apart. `uplift` trains a classifier to predict the group from the features (cross-fitted); an AUC
          near 0.5 means it cannot, i.e. the groups look exchangeable. The standardized mean difference (SMD)
          of each feature should be small (|SMD| < 0.1 is the usual rule of thumb).
        """),
        code('''
        study = Study(emails, treatment="segment", control="No E-Mail", outcome=["visit", "conversion", "spend"],
                      design="rct")
        study.fit(learners=["t", "x", "dr"], n_folds=3, n_boot=50, random_state=SEED)

        checks = study.diagnostics()
        print("Sample ratio:", checks["srm"]["message"])
        for arm, check in checks["balance_auc"].items():
            print(f"Balance, {arm} vs No E-Mail:", check["message"])
        worst = checks["balance"].assign(abs_smd=lambda t: t["smd"].abs()).nlargest(1, "abs_smd").iloc[0]
        level = "" if worst["level"] is None else f" = {worst['level']}"
        print(f"Largest standardized mean difference: {worst['smd']:+.3f} ({worst['feature']}{level}, {worst['arm']})")
        for note in study.notes:
            print("note:", note)
        '''),
        md("""
        ## 2. Did the campaign work?

        Because the e-mails were assigned at random, the customers who got no e-mail show what the e-mailed
        customers would have done without it. The **average treatment effect (ATE)** of an e-mail is then
        simply the difference between the group averages, and its 95% confidence interval comes from the
        spread of the outcomes in each group (Neyman's standard error). For visits and conversions the
        effect is in **percentage points (pp)**: +7 pp means 7 more visitors per 100 customers e-mailed. The
        *relative lift* divides that by the control group's rate.
        """),
        code('''
        effects = study.ate().query("estimand == 'ATE'")
        rows = []
        for r in effects.itertuples():
            money = r.outcome == "spend"
            rows.append({
                "e-mail": r.arm, "outcome": r.outcome,
                "without e-mail": f"{usd(r.control_mean, digits=3)} per customer" if money else f"{r.control_mean:.2%}",
                "effect per customer e-mailed (95% CI)": (usd(r.estimate, r.lower, r.upper, digits=None, sign=True)
                                                          if money else pp(r.estimate, r.lower, r.upper)),
                "relative lift (95% CI)": pct(r.relative_lift, r.relative_lower, r.relative_upper),
            })
        display(pd.DataFrame(rows))

        for r in effects.itertuples():
            verdict = "clearly positive" if r.lower > 0 else "negative" if r.upper < 0 else "not distinguishable from 0"
            print(f"{r.arm:>14} -> {r.outcome:<10} {verdict}")
        plot.plot_ate(effects)
        '''),
        md("""
        **Reading.** On the full data both e-mails clearly raised visits, the men's e-mail by more (about
        +7.7 pp against +4.5 pp), and both raised spend per customer e-mailed; the conversion effects are
        small because only about 1% of customers buy within two weeks, so their intervals are wide. Each
        e-mail *worked on average*. The next question is whether it worked for everybody.

        ## 3. For whom did it work?

        ### Segments you choose

        Within a segment, the difference between e-mailed and non-e-mailed customers estimates the segment's
        uplift. `study.segments(by)` computes it from each customer's **doubly-robust score**, a per-customer
        quantity whose average over *any* group is an unbiased estimate of that group's uplift, built from
        cross-fitted models so that no customer's score uses a model trained on that customer. The CI comes
        from the spread of the scores in the segment.

        A natural hypothesis: the women's e-mail works for customers who buy women's merchandise.
        """),
        code('''
        by_womens = study.segments("womens")
        display(by_womens[["arm", "segment", "n", "label", "note"]])
        plot.plot_segments(by_womens, kind="binary")
        '''),
        md("""
        On the full data the women's e-mail lifts visits by about +7.4 pp among customers who bought women's
        merchandise last year and by only about +1 pp among the others, while the men's e-mail works for both
        groups. A segment table answers the questions you thought of; a **discovered** segment answers the
        ones you did not.

        ### Segments discovered from the data

        `study.discover_segments()` grows a small regression tree on the doubly-robust scores of a random
        half of the customers and then measures every leaf on the **other** half. Searching and measuring on
        different customers keeps the CIs honest: a tree that searched for the most extreme groups would
        otherwise report exaggerated effects. The heterogeneity p-value tests whether the leaves really
        differ, or could all share the same uplift.
        """),
        code('''
        min_leaf = max(200, len(emails) // 40)  # fewest customers per leaf in the search half
        for arm in study.arms[1:]:
            leaves = study.discover_segments(arm=arm, max_depth=2, min_leaf=min_leaf, random_state=SEED)
            print(f"{arm}: heterogeneity p = {leaves.attrs['heterogeneity_p']:.2g}")
            display(leaves[["rule", "n", "label", "note"]])
        '''),
        md("""
        On the full data the tree finds nothing reliable for the men's e-mail (a heterogeneity p-value around
        0.4: its leaves could all share one uplift) and rediscovers the `womens` split for the women's e-mail
        (p far below 0.001), with an uplift near zero for customers who do not buy women's merchandise.

        ### What drives the model's predicted uplift?

        The uplift models predict an effect for every single customer. `study.explain()` fits a small
        gradient-boosted *surrogate* tree to the chosen model's predictions and splits each prediction into
        feature contributions with SHAP. The surrogate's R² on held-out customers says how faithfully it
        mimics the model. Read the ranking as "what the model uses to tell customers apart", not as the
        causal effect of a feature: features that travel together (here `history` and `history_segment`)
        share the credit.
        """),
        code('''
        explanation = study.explain(arm="Womens E-Mail", max_rows=1000, random_state=SEED)
        lo, hi = explanation.surrogate_r2_ci
        print(f"Explaining the {explanation.learner!r} model for {explanation.arm}; "
              f"surrogate fidelity R² = {fmt_ci(explanation.surrogate_r2, lo, hi, digits=2)}")
        importance = explanation.importance
        importance["mean |SHAP| on visit uplift (95% CI)"] = [
            fmt_ci(m, a, b, scale=100, unit="pp")
            for m, a, b in zip(importance["mean_abs_shap"], importance["lower"], importance["upper"], strict=True)]
        importance[["rank", "feature", "mean |SHAP| on visit uplift (95% CI)", "share"]]
        '''),
        md("""
        ## 4. Whom should we e-mail next time, and what is that worth?

        ### Can the models rank customers?

        A targeting list is only as good as the model's ranking. `study.leaderboard()` scores every learner
        **out of fold**: each customer's uplift was predicted by models that never saw that customer.

        * The **Qini coefficient** measures how much more incremental response we get by e-mailing customers
          in the model's order than in random order (0 = no better than random). It comes with a bootstrap
          95% CI.
        * **uplift@30%** is the observed uplift among the 30% of customers the model ranks highest.
        * The **DR loss** estimates the mean squared error of the predicted uplift itself (lower is better).
          A budget decision needs the *size* of each customer's uplift, not just the order, so the study
          picks the learner with the lowest DR loss.
        """),
        code('''
        board = study.leaderboard()
        board["qini (95% CI)"] = [fmt_ci(q, a, b) for q, a, b in
                                  zip(board["qini"], board["qini_lower"], board["qini_upper"], strict=True)]
        at_k = zip(board["uplift_at_k"], board["uplift_at_k_lower"], board["uplift_at_k_upper"], strict=True)
        board["uplift@30% (95% CI)"] = [pp(u, a, b) for u, a, b in at_k]
        print("Chosen learner:", study.best_learner_)
        display(board[["rank", "learner", "arm", "qini (95% CI)", "uplift@30% (95% CI)", "dr_loss", "dr_loss_se"]])
        plot.plot_qini(study.result, study.data, arm="Womens E-Mail")
        '''),
        md("""
        ### The targeting list

        Turning uplift into money needs two numbers from the business; both are **assumptions** you should
        replace with your own:

        * **Cost of one e-mail**: we use \\$0.10 (production, sending, and the small risk that a customer
          unsubscribes).
        * **Value of one extra visit**: we use the average spend per visit seen in the test. That assumes an
          extra visit the e-mail caused is worth as much as an ordinary one; the cell also prints the ratio
          of the spend effect to the visit effect as a cross-check. This is revenue, not margin: multiply by
          your margin to get profit in the strict sense.

        We give ourselves a budget to e-mail a quarter of the customers. `study.target()` picks, for each
        customer, the e-mail with the highest expected profit (uplift × value − cost) and fills the budget
        best customers first, never e-mailing anyone whose expected profit is negative.

        What the list is worth is **not** the model's own sum of predicted uplift (that would grade the
        model with its own homework). `uplift` applies the same rule to the study's held-out customers and
        values it with their doubly-robust scores, giving a 95% CI, and values "e-mail everyone" and
        "e-mail a random selection with the same budget" the same way.
        """),
        code('''
        COST_PER_EMAIL = 0.10  # dollars per e-mail sent (assumption)
        visitors = emails["visit"] == 1
        VALUE_PER_VISIT = float(emails.loc[visitors, "spend"].sum() / visitors.sum())  # dollars (assumption)
        spend_effect = effects.query("outcome == 'spend'")["estimate"].sum()
        visit_effect = effects.query("outcome == 'visit'")["estimate"].sum()
        BUDGET = COST_PER_EMAIL * round(0.25 * len(emails))

        print(f"Value of one extra visit: ${VALUE_PER_VISIT:.2f} (average spend per visit); cross-check: "
              f"extra spend per extra visit caused by the e-mails = ${spend_effect / visit_effect:.2f}")
        print(f"Budget: {usd(BUDGET)} = {BUDGET / COST_PER_EMAIL:,.0f} e-mails at {usd(COST_PER_EMAIL, digits=2)}")

        result = study.target(cost=COST_PER_EMAIL, value=VALUE_PER_VISIT, budget=BUDGET)
        s = result.summary
        est = s["estimated"]
        print(f"\\nList: {s['customers_selected']:,} of {s['customers_scored']:,} customers, spend {usd(s['spend'])}; "
              + ", ".join(f"{n:,} get the {arm}" for arm, n in s["by_coupon"].items()))
        print("Expected extra visits:",
              fmt_ci(est["incremental_outcome"], est["incremental_outcome_lower"], est["incremental_outcome_upper"]))
        print("Expected profit (extra revenue - e-mail cost):",
              usd(est["profit"], est["profit_lower"], est["profit_upper"]) + ",",
              f"ROI {pct(est['roi'], est['roi_lower'], est['roi_upper'])}")
        result.list.head()
        '''),
        md("""
        ### Compared with the simple rules

        Same valuation for every rule: the doubly-robust value on held-out customers, 95% CI. "Everyone"
        ignores the budget (it shows what e-mailing the whole base would earn and cost); "random" spends the
        same budget on randomly chosen customers.
        """),
        code('''
        def row(name, v):
            return {"rule": name, "customers": f"{v['n_selected']:,}", "spend": usd(v["spend"]),
                    "extra visits (95% CI)": fmt_ci(v["incremental_outcome"], v["incremental_outcome_lower"],
                                                    v["incremental_outcome_upper"]),
                    "profit (95% CI)": usd(v["profit"], v["profit_lower"], v["profit_upper"]),
                    "ROI (95% CI)": pct(v["roi"], v["roi_lower"], v["roi_upper"])}

        rules = [row("uplift model, best e-mail per customer", est)]
        rules += [row(name + (" (ignores the budget)" if name.startswith("everyone") else ""), v)
                  for name, v in s["baselines"].items() if not name.startswith("random (one draw)")]
        comparison = pd.DataFrame(rules)
        comparison
        '''),
        md("""
        The profit curve shows what each additional e-mail adds when customers are taken in the model's
        order: the model's own expectation, and the held-out doubly-robust estimate with its 95% band (the
        honest one). Where the estimated curve flattens, further e-mails add little. At \\$0.10 an e-mail
        almost every customer is worth e-mailing, so here the budget, not profitability, decides where the
        list stops; what the model adds is the order and the choice of e-mail.
        """),
        code('''
        uplift_oof = study.oof_uplift()                  # held-out predicted uplift, one column per e-mail
        best = uplift_oof.argmax(axis=1)                 # each customer's better e-mail
        rows = np.arange(len(best))
        dr_scores = study.crossfit_.policy_dr[rows, best]  # held-out doubly-robust score of that e-mail
        curve = targeting.profit_curve(uplift_oof[rows, best], COST_PER_EMAIL, VALUE_PER_VISIT, dr=dr_scores)
        plot.plot_profit_curve(curve, currency="$")
        '''),
        md("""
        ## Decision

        The cell below states the recommendation with this run's numbers. Two habits make the next campaign
        better than this one:

        * **Keep a random hold-out** of the customers on the list who do *not* get the e-mail
          (`uplift target ... --holdout 0.1`), so that after the campaign `uplift readout` measures what the
          list really caused instead of trusting the model.
        * **Use the real economics**: the value of a visit and the cost of an e-mail drive who makes the list
          far more than the choice of learner does.
        """),
        code('''
        random_same_budget = {k: v for k, v in s["baselines"].items() if k.startswith("random: ")}
        best_random = max(random_same_budget, key=lambda k: random_same_budget[k]["profit"])
        rb = random_same_budget[best_random]
        print(f"Recommendation: send the list above ({s['customers_selected']:,} customers, {usd(s['spend'])}).")
        print(f"  expected profit {usd(est['profit'], est['profit_lower'], est['profit_upper'])} "
              f"vs {usd(rb['profit'], rb['profit_lower'], rb['profit_upper'])} for the best random rule "
              f"({best_random.removeprefix('random: ')} to random customers, same budget).")
        by_womens_w = by_womens.query("arm == 'Womens E-Mail'").set_index("segment")["label"]
        print("  the women's e-mail only for customers who buy women's merchandise:",
              "; ".join(f"{k}: {v}" for k, v in by_womens_w.items()))
        print(f"\\nNotebook ran in {time.perf_counter() - started:.0f} s on {len(emails):,} customers.")
        '''),
    ]


# ------------------------------------------------------------------------------------------------------------
# 02: an observational coupon campaign with known truth
def observational_coupons() -> list:
    return [
        md("""
        # Coupons sent by a marketing rule: what did they really cause?

        Marketing sent a coupon to the customers it judged most promising: frequent, big-spending, recent
        buyers and newsletter readers. Nobody kept a random control group. Afterwards the question is the
        usual one: **did the coupon raise conversions, and by how much?**

        This is an **observational** study: who got the coupon was decided by a rule that looked at the
        customers, so the coupon receivers differ from the others before any coupon was sent. We use
        `uplift.simulate_campaign(design="observational")`, a simulated campaign in which every customer's
        *true* effect is known. The analysis never looks at the truth columns; we only use them at the end of
        each step to check whether the method got it right, which real data can never do.

        The story:

        1. **The naive comparison** and why it misleads.
        2. **Diagnostics**: can an adjusted estimate be trusted here (overlap, balance, leakage)?
        3. **The adjusted estimate** (AIPW) and how close it comes to the truth.
        4. **Refutation**: trying to break the estimate, and what no check can see (hidden confounding).

        **Runtime knob.** `SAMPLE` is the number of simulated customers (default 30,000, about 30 seconds
        on two cores). Set the environment variable `UPLIFT_SAMPLE` to change it (e.g. `UPLIFT_SAMPLE=5000`
        for a quick, noisier run).
        """),
        code('''
        import os
        import time
        import warnings

        import numpy as np
        import pandas as pd
        from IPython.display import display

        from uplift import DesignCheckError, Study, simulate_campaign
        from uplift import design as diagnostics
        from uplift._display import fmt_effect, fmt_money, fmt_pct
        from uplift._stats import Estimate
        from uplift.viz import plots as plot

        %matplotlib inline
        warnings.filterwarnings("ignore", message="IProgress not found")  # a notice from shap's progress bar

        # SAMPLE: simulated customers (default 30,000, about 30 s on 2 cores). Override with the environment
        # variable UPLIFT_SAMPLE, e.g. UPLIFT_SAMPLE=5000, for a faster run with wider confidence intervals.
        SAMPLE = int(os.environ.get("UPLIFT_SAMPLE", 30_000))
        SEED = 2
        started = time.perf_counter()
        pd.set_option("display.max_columns", 30, "display.width", 160, "display.max_colwidth", 140,
                      "display.precision", 3)
        ''', FORMAT_HELPERS),
        md("""
        ## The data, and the truth we hide from the analysis

        The simulator returns CRM attributes (recency, frequency, order value, tenure, age, channel, region,
        newsletter, four pure-noise columns), the coupon flag `treatment`, the outcomes `conversion` and
        `revenue`, and the ground truth: each customer's true uplift and true probability of getting the
        coupon. We split the truth off; `campaign` is what an analyst would actually have.
        """),
        code('''
        df = simulate_campaign(SAMPLE, design="observational", seed=SEED)
        truth_columns = [c for c in df if c.startswith(("true_", "propensity"))]
        truth, campaign = df[truth_columns], df.drop(columns=truth_columns)
        got_coupon = campaign["treatment"] == 1

        true_ate = truth["true_uplift"].mean()                          # every customer
        true_att = truth.loc[got_coupon, "true_uplift"].mean()          # customers who got the coupon
        true_ate_revenue = truth["true_revenue_uplift"].mean()
        true_att_revenue = truth.loc[got_coupon, "true_revenue_uplift"].mean()
        print(f"{len(campaign):,} customers, {got_coupon.mean():.0%} got the coupon")
        print(f"(hidden truth) effect of the coupon on conversion: ATE {100 * true_ate:+.2f} pp, "
              f"ATT {100 * true_att:+.2f} pp; on revenue: ATE {usd(true_ate_revenue, digits=2, sign=True)}, "
              f"ATT {usd(true_att_revenue, digits=2, sign=True)} per customer")
        campaign.head()
        '''),
        md("""
        Two different averages can be asked for. The **ATE** (average treatment effect) is the effect had
        *every* customer got the coupon; the **ATT** (average effect on the treated) is the effect among the
        customers who actually got it. Here marketing picked many customers who buy anyway, some of whom are
        put off by coupons, so the ATT is smaller than the ATE.

        ## 1. The naive comparison

        The first thing anyone computes: conversion rate of coupon receivers minus conversion rate of the
        others, with the usual two-sample confidence interval.
        """),
        code('''
        y = campaign["conversion"]
        p1, p0 = y[got_coupon].mean(), y[~got_coupon].mean()
        n1, n0 = got_coupon.sum(), (~got_coupon).sum()
        naive = p1 - p0
        naive_se = np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
        print(f"converted: {p1:.2%} with coupon, {p0:.2%} without")
        naive_ci = Estimate.from_se(naive, naive_se)  # estimate ± z·se, z of the 95% interval
        print(f"naive effect {pp(naive, naive_ci.lower, naive_ci.upper)}  "
              f"vs true ATE {100 * true_ate:+.2f} pp: the naive number is {naive / true_ate:.1f} times the truth")
        '''),
        md("""
        Why is it so far off? Because the two groups were different **before** the coupon. The standardized
        mean difference (SMD) compares each feature's average between coupon receivers and the others in
        units of its standard deviation; |SMD| above 0.1 is a noticeable imbalance.
        """),
        code('''
        features = campaign.drop(columns=["customer_id", "treatment", "conversion", "revenue"])
        before = diagnostics.balance_table(features, got_coupon.astype(int))
        before.assign(abs_smd=before["smd"].abs()).nlargest(6, "abs_smd")[
            ["feature", "level", "mean_treated", "mean_control", "smd"]]
        '''),
        md("""
        Coupon receivers bought more often, spent more per order, bought more recently and read the
        newsletter more: exactly the customers who convert more **without** a coupon. The naive comparison
        credits the coupon with their loyalty. Such a feature, one that drives both who gets the coupon and
        who buys, is a **confounder**.

        ## 2. Diagnostics: can an adjusted estimate be trusted here?

        Adjusting for the confounders can recover the effect, but only under three conditions:

        1. **No hidden confounding**: every feature that drove both the targeting and the buying is in the
           data. No statistic can prove this; it rests on knowing how the campaign was targeted. (Here we
           know: the simulator's targeting rule uses only recorded features.)
        2. **Overlap**: every kind of customer had some chance both of getting and of not getting the coupon.
           If all frequent buyers got a coupon, no data say what frequent buyers do without one.
        3. **No leakage**: no feature was recorded *after* or *because of* the coupon (a redemption code, a
           "days since coupon" field). Adjusting for such a feature removes part of the effect itself.

        `uplift` checks what the data can check. In an observational `Study`, `fit()` estimates every
        customer's **propensity** (probability of getting the coupon given the features, cross-fitted),
        then checks overlap on it, looks for leaking features, and checks whether weighting customers by the
        inverse of their propensity balances the features.

        Note that we declare **both** outcomes, `conversion` and `revenue`. Every column that is not
        declared as treatment, outcome or id becomes a feature, and revenue (zero exactly when a customer did
        not buy) used as a feature would give the conversion answer away.
        """),
        code('''
        study = Study(campaign, treatment="treatment", outcome=["conversion", "revenue"], id="customer_id",
                      design="observational")
        study.fit(learners=["t", "x", "dr"], n_folds=3, n_boot=50, random_state=SEED)

        checks = study.diagnostics()
        arm = study.arms[1]
        print("Overlap:", checks["overlap"][arm]["message"])
        leaks = checks["leakage"]
        print("Leakage:", "no feature gives the coupon away" if leaks.empty else leaks[["feature", "message"]])
        weighted = checks["balance_weighted"]
        print(f"Largest |SMD|: {before['smd'].abs().max():.2f} before weighting, "
              f"{weighted['smd'].abs().max():.2f} after inverse-propensity weighting")
        for note in study.notes:
            print("note:", note)
        plot.plot_propensity_overlap(study.crossfit_.e[:, 1], campaign["treatment"], arm_labels=("no coupon", "coupon"))
        '''),
        md("""
        The histograms overlap across the whole range: there are customers without a coupon at every
        propensity where there are customers with one, so comparisons are supported by data rather than
        extrapolation. The love plot shows the imbalance before and after weighting.
        """),
        code('''
        plot.plot_love(before, weighted)
        '''),
        md("""
        ### What a leak looks like

        Suppose the CRM export had also included `days_since_coupon_email`, filled in only for customers who
        got the coupon. It looks like an innocent customer attribute, but it was created *by* the campaign.
        `fit()` refuses to go on and says why (here on a small slice of the data, with one learner, to keep
        it fast).
        """),
        code('''
        leaky = campaign.head(min(len(campaign), 4000)).copy()
        rng = np.random.default_rng(SEED)
        leaky["days_since_coupon_email"] = np.where(leaky["treatment"] == 1, rng.integers(1, 15, len(leaky)), np.nan)
        try:
            Study(leaky, treatment="treatment", outcome="conversion", id="customer_id",
                  design="observational").fit(learners=["t"], n_folds=2, n_boot=10)
        except DesignCheckError as error:
            print("fit() stopped:", error)
        '''),
        md("""
        ## 3. The adjusted estimate: AIPW

        The study estimates the average effect with **AIPW** (augmented inverse-propensity weighting), in
        plain words:

        1. An **outcome model** predicts, for every customer, the chance of buying with and without the
           coupon; the average difference of the two predictions is a first estimate.
        2. That estimate is then **corrected** with the prediction errors of the customers we did observe,
           each weighted by how rare their situation was (1 / propensity): a coupon receiver who was unlikely
           to get one stands in for many similar customers who did not.

        The result is **doubly robust**: it is right if either the outcome model or the propensity model is
        right. Every prediction is **cross-fitted** (made by models trained on the other folds), which keeps
        flexible machine-learning models from fitting their own noise into the estimate. The 95% CI comes
        from the spread of each customer's contribution (the influence function). The naive difference is
        reported next to it so the size of the correction is visible.
        """),
        code('''
        truth_of = {("conversion", "naive"): true_ate, ("conversion", "ATE"): true_ate, ("conversion", "ATT"): true_att,
                    ("revenue", "naive"): true_ate_revenue, ("revenue", "ATE"): true_ate_revenue,
                    ("revenue", "ATT"): true_att_revenue}
        rows = []
        for r in study.ate().itertuples():
            money = r.outcome == "revenue"
            show = (lambda e, lo, hi: usd(e, lo, hi, digits=2, sign=True)) if money else pp
            true = truth_of[(r.outcome, r.estimand)]
            rows.append({"outcome": r.outcome, "estimand": r.estimand, "method": r.method,
                         "estimate (95% CI)": show(r.estimate, r.lower, r.upper),
                         "truth (hidden)": usd(true, digits=2, sign=True) if money else f"{100 * true:+.2f} pp",
                         "CI covers the truth": bool(r.lower <= true <= r.upper)})
        effects_table = pd.DataFrame(rows)
        display(effects_table)
        plot.plot_ate(study.ate())
        '''),
        md("""
        The naive difference is far from the truth and its confidence interval does not contain it: more
        data would only make it *more confidently wrong*. The AIPW estimates land much closer, and the last
        column says whether each interval covers the truth in this run. (A 95% interval misses the truth in
        about one run in twenty; `benchmarks/results/coverage.md` measures how often over 200 simulated
        campaigns.)

        ## 4. Trying to break the estimate

        ### Refutation tests

        `study.refute()` hands the data to [DoWhy](https://www.pywhy.org/dowhy/) and runs tests an estimate
        should survive:

        * **placebo**: shuffle the coupon flag at random; the "effect" of a random flag must vanish.
        * **random common cause**: add a made-up random feature; a sound estimate does not move.
        * **data subset**: re-estimate on random 80% subsets; the estimate should be stable.
        * **unobserved**: simulate a hidden confounder as strong as the strongest measured feature; does the
          effect keep its sign?

        Each test re-fits the AIPW models several times, so we run it on a random subsample of at most 5,000
        customers: the estimate there is noisier than the full-data one above, which is fine for a
        robustness check. Effects are in percentage points of conversion.
        """),
        code('''
        refutation = study.refute(max_rows=min(5_000, len(campaign)), random_state=SEED)
        first = refutation.iloc[0]
        print(f"AIPW estimate on the subsample: {pp(first.estimate, first.estimate_lower, first.estimate_upper)}")
        pd.DataFrame({
            "test": refutation["refuter"],
            "estimate after the change (95% CI)": [pp(r.new_estimate, r.new_lower, r.new_upper)
                                                   for r in refutation.itertuples()],
            "expected": ["about 0", "unchanged", "unchanged", "same sign"],
            "passed": refutation["passed"],
        })
        '''),
        md("""
        How to read a failure. A **placebo** effect clearly different from zero, or a sign change under the
        simulated hidden confounder, would be serious: the method finds effects where there are none, or the
        conclusion hangs on an unmeasured factor. The two stability tests compare re-estimates with the
        original and "fail" as soon as the difference is statistically detectable and larger than a tenth of
        the confidence interval's half-width. Re-fitting flexible models moves an estimate a little by
        itself, so judge a failed stability test by the size of the shift, printed here against the
        estimate's own uncertainty:
        """),
        code('''
        half_width = (first.estimate_upper - first.estimate_lower) / 2
        for r in refutation.itertuples():
            if r.refuter in ("random_common_cause", "data_subset"):
                shift = r.new_estimate - r.estimate
                print(f"{r.refuter}: estimate moved by {100 * shift:+.2f} pp, {abs(shift) / half_width:.0%} of the "
                      f"95% CI half-width ({100 * half_width:.2f} pp); {'passed' if r.passed else 'failed'}")
        '''),
        md("""
        ### What the checks cannot see: hidden confounding

        All the checks above assume that the confounders are *in the data*. To see why that matters, imagine
        the CRM export had lost two columns, `frequency` and `newsletter`, both of which marketing used to
        pick customers and both of which predict buying. We re-fit on the remaining features (one learner is
        enough for the average effect):
        """),
        code('''
        blind = Study(campaign.drop(columns=["frequency", "newsletter"]), treatment="treatment",
                      outcome=["conversion", "revenue"], id="customer_id", design="observational")
        blind.fit(learners=["t"], n_folds=3, n_boot=20, random_state=SEED)
        ate_blind = blind.ate().query("outcome == 'conversion' and estimand == 'ATE'").iloc[0]
        print("Overlap:", blind.diagnostics()["overlap"][arm]["message"])
        print(f"ATE without frequency and newsletter: {pp(ate_blind.estimate, ate_blind.lower, ate_blind.upper)} "
              f"(truth {100 * true_ate:+.2f} pp; covers it: {ate_blind.lower <= true_ate <= ate_blind.upper})")
        '''),
        md("""
        The estimate drifts back towards the naive answer, while overlap still looks fine: hidden confounding
        is invisible to the data. The **E-value** puts a number on this risk for the real analysis: how
        strongly (as a risk ratio) a hidden confounder would have to be associated with both getting the
        coupon and buying to explain the whole effect away. A large E-value means only a strong, hard-to-miss
        confounder could do it; an E-value near 1 means even a weak one could.
        """),
        code('''
        for r in study.e_values().itertuples():
            print(f"E-value for the effect on {r.outcome}: {r.e_value:.2f} (for the CI limit nearest no effect: "
                  f"{r.e_value_ci:.2f})")
            print("  ", r.message)
        '''),
        md("""
        ## Conclusion

        * The naive comparison overstates the coupon's effect because marketing picked customers who would
          have bought anyway.
        * With the confounders in the data, overlap and no leakage, the cross-fitted AIPW estimate lands close
          to the true average effect, and the refutation tests show whether it is stable.
        * No test can rule out a confounder that is missing from the data; the E-value says how strong it
          would have to be. The only complete fix is a randomised control group: next time, hold out a random
          share of the customers marketing selects.
        """),
        code('''
        ate = study.ate().query("outcome == 'conversion' and estimand == 'ATE'").iloc[0]
        print(f"Coupon effect on conversion: naive {100 * naive:+.2f} pp, "
              f"adjusted {pp(ate.estimate, ate.lower, ate.upper)}, truth {100 * true_ate:+.2f} pp.")
        print(f"Notebook ran in {time.perf_counter() - started:.0f} s on {len(campaign):,} customers.")
        '''),
    ]


# ------------------------------------------------------------------------------------------------------------
# 03: several coupons, one budget
def multi_coupon_budget() -> list:
    return [
        md("""
        # Three coupons, one budget: who should get which coupon?

        A retailer tested three coupons against no coupon in a randomised experiment: each customer got one
        of **coupon A** (a 10% discount), **coupon B** (free shipping), **coupon C** (double loyalty points)
        or nothing, with equal chances. Next month's campaign has a fixed budget, and each coupon has its own
        cost. The decision: **which customers get which coupon**, and what return can we expect, with what
        uncertainty, compared with the simple rules marketing would otherwise use?

        We use `uplift.simulate_campaign(n_arms=3)`, so the true effect of every coupon on every customer is
        known. The analysis never reads it; we use it at the end to check each rule against the truth, which
        a real campaign cannot do.

        1. **Did each coupon work on average, and does it pay?**
        2. **For whom does each coupon work?**
        3. **The targeting list** for next month's customers under the budget.
        4. **Compared with simple rules**: everyone, random, and "highest propensity to buy".

        **Runtime knob.** `SAMPLE` is the number of customers in the experiment (default 40,000, about 30
        seconds on two cores). Set the environment variable `UPLIFT_SAMPLE` to change it (for example
        `UPLIFT_SAMPLE=6000` for a quick, noisier run). Next month's customer base is always 20,000.
        """),
        code('''
        import os
        import time
        import warnings

        import numpy as np
        import pandas as pd
        from IPython.display import display
        from lightgbm import LGBMClassifier
        from sklearn.model_selection import cross_val_predict

        from uplift import Study, simulate_campaign, targeting
        from uplift._display import fmt_ci, fmt_effect, fmt_money, fmt_pct
        from uplift.viz import plots as plot

        %matplotlib inline
        warnings.filterwarnings("ignore", message="IProgress not found")  # a notice from shap's progress bar

        # SAMPLE: customers in the experiment (default 40,000, about 30 s on 2 cores). Override with the environment
        # variable UPLIFT_SAMPLE, e.g. UPLIFT_SAMPLE=6000, for a faster run with wider confidence intervals.
        SAMPLE = int(os.environ.get("UPLIFT_SAMPLE", 40_000))
        SEED = 3
        started = time.perf_counter()
        pd.set_option("display.max_columns", 30, "display.width", 160, "display.max_colwidth", 120,
                      "display.precision", 3)
        ''', FORMAT_HELPERS),
        md("""
        ## The business assumptions

        Replace these with your own: they decide the list far more than any modelling choice.
        """),
        code('''
        COUPONS = {"coupon_a": "10% discount", "coupon_b": "free shipping", "coupon_c": "double loyalty points"}
        COST = {"coupon_a": 1.00, "coupon_b": 1.20, "coupon_c": 0.80}  # dollars per coupon sent (discount taken,
                                                                     # shipping paid, points honoured, on average)
        VALUE = 40.0      # dollars of margin from one extra purchase
        BUDGET = 4_000.0  # dollars for next month's campaign
        N_NEXT = 20_000   # customers we can send coupons to next month
        for arm, name in COUPONS.items():
            print(f"{arm} ({name}): costs {usd(COST[arm], digits=2)}; pays off for a customer whose purchase "
                  f"probability it raises by more than {100 * COST[arm] / VALUE:.1f} pp")
        print(f"Budget {usd(BUDGET)} for {N_NEXT:,} customers: at most {BUDGET / min(COST.values()):,.0f} coupons")
        '''),
        md("""
        ## The experiment, and next month's customers

        `experiment` is the randomised test (features, the coupon received, conversion and revenue);
        `next_month` are new customers, with features only. The truth columns are split off both.
        """),
        code('''
        experiment = simulate_campaign(SAMPLE, n_arms=3, seed=SEED)
        next_month = simulate_campaign(N_NEXT, n_arms=3, seed=SEED + 1)
        truth_columns = [c for c in experiment if c.startswith(("true_", "propensity"))]
        features = ["recency_days", "frequency", "monetary", "tenure_months", "age", "channel", "region", "newsletter",
                    "noise_1", "noise_2", "noise_3", "noise_4"]
        next_truth = next_month[truth_columns]
        experiment = experiment.drop(columns=truth_columns)
        customers = next_month[["customer_id", *features]]
        print(f"experiment: {len(experiment):,} customers; next month: {len(customers):,} customers")
        experiment["treatment"].value_counts().sort_index().rename("customers").to_frame()
        '''),
        md("""
        ## 1. Did each coupon work on average, and does it pay?

        The study compares each coupon with the no-coupon group. Because coupons were assigned at random, the
        difference in conversion rates is an unbiased estimate of each coupon's **average treatment effect
        (ATE)**, in percentage points (pp), with a 95% confidence interval.

        The money question follows directly: sending a coupon to a customer earns `uplift × value − cost` on
        average. With the average uplift, does any coupon pay for itself if sent to everyone?
        """),
        code('''
        study = Study(experiment, treatment="treatment", control="control", outcome=["conversion", "revenue"],
                      id="customer_id")
        study.fit(learners=["t", "x", "dr"], n_folds=3, n_boot=50, random_state=SEED)
        for note in study.notes:
            print("note:", note)

        rows = []
        for r in study.ate().query("estimand == 'ATE' and outcome == 'conversion'").itertuples():
            profit = [x * VALUE - COST[r.arm] for x in (r.estimate, r.lower, r.upper)]  # per coupon sent
            rows.append({"coupon": f"{r.arm} ({COUPONS[r.arm]})",
                         "effect on conversion (95% CI)": pp(r.estimate, r.lower, r.upper),
                         "relative lift (95% CI)": pct(r.relative_lift, r.relative_lower, r.relative_upper),
                         "profit per coupon sent to everyone (95% CI)": usd(*profit, digits=2, sign=True)})
        pd.DataFrame(rows)
        '''),
        md("""
        Every coupon raises conversion on average, by one to two percentage points on the full sample, but at
        \\$40 a purchase that is worth less than the coupon costs: **sent to everyone, every coupon loses
        money** (the profit column). The campaign can only pay if the coupons go to the customers they move
        most.

        ## 2. For whom does each coupon work?

        Uplift per channel and coupon, from each customer's doubly-robust score (an unbiased per-customer
        effect estimate whose average over a group is the group's uplift), with 95% CIs:
        """),
        code('''
        by_channel = study.segments("channel")
        by_channel.pivot(index="segment", columns="arm", values="label")
        '''),
        md("""
        The coupons appeal to different customers: free shipping to web shoppers, loyalty points to store
        customers, the discount to app users (and, the models find, to lapsed customers). So the question is
        not only *whom* to target but *with which coupon*. The uplift models estimate every coupon's effect for
        every customer; the leaderboard shows how well they rank customers out of fold (Qini coefficient with
        a bootstrap 95% CI; 0 = no better than random) and which learner has the lowest DR loss (the estimated
        error of the predicted uplift itself), the one used for the list.
        """),
        code('''
        board = study.leaderboard()
        board["qini (95% CI)"] = [fmt_ci(q, a, b) for q, a, b in
                                  zip(board["qini"], board["qini_lower"], board["qini_upper"], strict=True)]
        print("Chosen learner:", study.best_learner_)
        board.pivot(index="learner", columns="arm", values="qini (95% CI)").loc[board["learner"].unique()]
        '''),
        md("""
        ## 3. The targeting list for next month

        `study.target(customers, cost=..., value=..., budget=...)` predicts every coupon's uplift for each new
        customer and chooses **at most one coupon per customer** to maximise expected profit within the
        budget (a multiple-choice knapsack, solved greedily on profit per dollar and checked against the exact
        optimum in the tests). Customers whose best coupon has negative expected profit, including the
        "sleeping dogs" a coupon would put off, are never chosen.

        Its expected value is estimated honestly: the same rule is applied to the experiment's customers,
        using their **held-out** predictions, and valued with their doubly-robust scores, then scaled to next
        month's list. That gives the expected incremental conversions, profit and ROI (return on the money
        spent: profit / spend) with 95% CIs.
        """),
        code('''
        result = study.target(customers, cost=COST, value=VALUE, budget=BUDGET)
        s, est = result.summary, result.summary["estimated"]
        print(f"List: {s['customers_selected']:,} of {s['customers_scored']:,} customers, spend {usd(s['spend'])}")
        for arm, n in s["by_coupon"].items():
            print(f"  {arm} ({COUPONS[arm]}): {n:,} customers")
        print("Expected extra purchases:",
              fmt_ci(est["incremental_outcome"], est["incremental_outcome_lower"], est["incremental_outcome_upper"]))
        print(f"Expected profit: {usd(est['profit'], est['profit_lower'], est['profit_upper'])}; "
              f"ROI {pct(est['roi'], est['roi_lower'], est['roi_upper'])}")
        result.list.head()
        '''),
        md("""
        Who gets which coupon, by channel: the allocation follows the segment table above.
        """),
        code('''
        chosen = customers.merge(result.list[["customer_id", "coupon"]], on="customer_id")
        pd.crosstab(chosen["channel"], chosen["coupon"], margins=True, margins_name="total")
        '''),
        md("""
        ## 4. Compared with simple rules

        Four ways marketing could spend (or not spend) the money, each valued the same way as the list: the
        rule applied to the experiment's held-out customers, doubly-robust value, 95% CI, scaled to next
        month's 20,000 customers.

        * **Everyone gets coupon X**: `summary["baselines"]["everyone: X"]`. It ignores the budget, so it
          shows what covering the whole base would cost and earn.
        * **Random customers get coupon X** until the budget is spent: `summary["baselines"]["random: X"]`.
        * **Highest propensity to buy**: the classic response model. `uplift` does not offer it as a
          baseline, so we build it here: a LightGBM classifier predicts each customer's chance of buying from
          the features; the customers most likely to buy get the coupon with the best average return (from
          section 1) until the budget is spent. We value it exactly like the other rules: on the experiment's
          customers, with the classifier's *out-of-fold* predictions and the study's held-out doubly-robust
          scores (`study.crossfit_.policy_dr`).

        Because this campaign is simulated we can also compute what each rule **truly** earns on next
        month's customers, and what the best possible list (chosen with the true effects) would earn.
        """),
        code('''
        arms = list(study.arms[1:])
        cost = np.array([COST[a] for a in arms])
        scale = N_NEXT / len(experiment)  # next month's customers per experiment customer
        true_uplift = next_truth[[f"true_uplift_{a}" for a in arms]].to_numpy()  # hidden truth, next month


        def true_profit(arm):
            """What a rule (coupon index per next-month customer, -1 = none) truly earns, in expectation."""
            sent = arm >= 0
            return float(VALUE * true_uplift[sent, arm[sent]].sum() - cost[arm[sent]].sum())


        def scaled(value):
            """A held-out policy value of the experiment's customers, scaled to next month's list."""
            keys = ("incremental_outcome", "profit")
            return value | {f"{k}{x}": value[f"{k}{x}"] * scale for k in keys for x in ("", "_lower", "_upper")} | {
                "spend": value["spend"] * scale}


        # "Highest propensity to buy": best average coupon, most likely buyers first.
        ate = study.ate().query("estimand == 'ATE' and outcome == 'conversion'").set_index("arm")["estimate"]
        best_avg = int(np.argmax([ate[a] * VALUE / COST[a] for a in arms]))
        buy_model = LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=50,
                                   n_jobs=1, random_state=SEED, verbose=-1)
        p_buy_experiment = cross_val_predict(buy_model, experiment[features], experiment["conversion"], cv=3,
                                             method="predict_proba")[:, 1]
        buy_model.fit(experiment[features], experiment["conversion"])
        p_buy_next = buy_model.predict_proba(customers[features])[:, 1]


        def top_buyers(p_buy, n_coupons):
            arm = np.full(len(p_buy), -1)
            arm[np.argsort(-p_buy, kind="stable")[:n_coupons]] = best_avg
            return arm


        k_next = int(BUDGET // COST[arms[best_avg]])
        propensity_arm = top_buyers(p_buy_experiment, round(k_next / scale))  # same budget share, experiment rows
        propensity_rule = scaled(targeting.policy_value(study.crossfit_.policy_dr, propensity_arm, cost, VALUE))

        # The uplift list as a coupon index per next-month customer, and the best list money could buy if the
        # true effects were known.
        coupon_of = result.list.set_index("customer_id")["coupon"]
        list_arm = (customers["customer_id"].map(coupon_of).map({a: j for j, a in enumerate(arms)})
                    .fillna(-1).astype(int).to_numpy())
        oracle = targeting.allocate(true_uplift, cost, VALUE, budget=BUDGET)


        def true_random(j, n):
            """Expected true profit of coupon j sent to n random next-month customers."""
            return float(n / N_NEXT * (VALUE * true_uplift[:, j].sum() - cost[j] * N_NEXT))


        rules = [("uplift model: best coupon per customer", s["customers_selected"], est, true_profit(list_arm)),
                 (f"highest propensity to buy: {arms[best_avg]}", k_next, propensity_rule,
                  true_profit(top_buyers(p_buy_next, k_next)))]
        for j, a in enumerate(arms):
            rand = s["baselines"][f"random: {a}"]
            n = round(rand["spend"] / cost[j])
            rules.append((f"random customers: {a}", n, rand, true_random(j, n)))
        for j, a in enumerate(arms):
            rules.append((f"everyone: {a} (ignores the budget)", N_NEXT, s["baselines"][f"everyone: {a}"],
                          true_random(j, N_NEXT)))

        comparison = pd.DataFrame([{
            "rule": name, "customers": f"{n:,}", "spend": usd(v["spend"]),
            "extra purchases (95% CI)": fmt_ci(v["incremental_outcome"], v["incremental_outcome_lower"],
                                               v["incremental_outcome_upper"]),
            "profit (95% CI)": usd(v["profit"], v["profit_lower"], v["profit_upper"]),
            "ROI (95% CI)": pct(v["roi"], v["roi_lower"], v["roi_upper"]),
            "true profit (simulation only)": usd(truth),
            "truth inside the CI": bool(v["profit_lower"] <= truth <= v["profit_upper"]),
        } for name, n, v, truth in rules])
        display(comparison)

        truth_list = true_profit(list_arm)
        inside = est["profit_lower"] <= truth_list <= est["profit_upper"]
        print(f"Uplift list: estimated profit {usd(est['profit'], est['profit_lower'], est['profit_upper'])}, "
              f"true profit {usd(truth_list)}: the estimate is {'above' if est['profit'] > truth_list else 'below'} "
              f"the truth, which lies {'inside' if inside else 'outside'} its 95% CI.")
        captured = truth_list / oracle.total_profit
        print(f"Best possible list with the true effects (simulation only): {usd(oracle.total_profit)} profit, "
              f"{oracle.n_selected:,} customers; the uplift list truly earns {captured:.0%} of it.")
        '''),
        md("""
        **Reading.** The likely buyers are the customers who buy anyway, and the heaviest buyers among them
        are put off by a coupon ("sleeping dogs"), so ranking by propensity to buy spends the budget where
        coupons do least; random targeting earns the average effect, which does not cover the coupon's cost.
        Only the uplift list earns a positive return. The last two columns compare every estimate with the
        truth, which only a simulation reveals, and the line under the table says how the uplift list's own
        estimate fared. Whatever it says, that estimate is a forecast made from the experiment, with a wide
        interval (a few hundred extra purchases measured against the noise of thousands of customers): the
        campaign itself should be measured with a hold-out.

        The per-customer decision is visible in the profit curve of the list: the model's expected profit as
        more customers are added, most profitable first, and where the budget stops the list.
        """),
        code('''
        plot.plot_profit_curve(result.curve, currency="$")
        '''),
        md("""
        ## Decision

        Send the list above. Before it goes out, keep a random hold-out of the selected customers without a
        coupon (CLI: `uplift target ... --holdout 0.1`) so that `uplift readout` can measure, after the
        campaign, what the list really caused, rather than what the model promised.
        """),
        code('''
        print(f"Send {s['customers_selected']:,} coupons for {usd(s['spend'])}: "
              + ", ".join(f"{n:,} x {arm} ({COUPONS[arm]})" for arm, n in s["by_coupon"].items() if n))
        print(f"Expected profit {usd(est['profit'], est['profit_lower'], est['profit_upper'])}, "
              f"ROI {pct(est['roi'], est['roi_lower'], est['roi_upper'])} (95% CIs).")
        print(f"Notebook ran in {time.perf_counter() - started:.0f} s on {len(experiment):,} customers.")
        '''),
    ]


# ------------------------------------------------------------------------------------------------------------
# 04: from a raw event log to a study and a targeting list
def events_to_study() -> list:
    return [
        md("""
        # From raw events to a targeting list: building the campaign table without leaking the campaign

        A shop's data does not start as a tidy campaign table. It is an **event log** (views, add-to-carts,
        purchases, favourites, reviews, coupon redemptions, returns: who, when, how much, which category, which
        channel) and a **campaign log** (who was sent a coupon, who was kept as control, and when). This notebook
        goes from those raw logs to an uplift study and a targeting list:

        1. **Build the features point in time** with `uplift features` (DuckDB): per customer, recency,
           frequency and money per event type over 7/30/90/365 days, category and channel shares, trend,
           average order value and redeem / return rates, each from events **strictly before** the customer's
           exposure, and the outcome (a purchase within 14 days) **after** it.
        2. **The leakage guard**: a feature window that reaches past the exposure is refused, and forcing it
           shows how a leak explains the effect away.
        3. **Fit the study** on the built table, read the same table back through SQL, and **check against the
           truth**: the shop is simulated (`uplift.datasets.simulate_events`), so every customer's true uplift is
           known. The analysis never reads it until the check.

        **Runtime knob.** `SAMPLE` is the number of customers (default 20,000, about a minute on two cores); set
        the environment variable `UPLIFT_SAMPLE` to change it.
        """),
        code('''
        import os
        import time
        import warnings

        import numpy as np
        import pandas as pd
        from IPython.display import display

        from uplift import Study
        from uplift._display import fmt_effect, fmt_money, fmt_pct
        from uplift.data import read_sql, write_sql_table
        from uplift.datasets import simulate_events
        from uplift.errors import UpliftInputError
        from uplift.features import build_features

        SAMPLE = int(os.environ.get("UPLIFT_SAMPLE", 20_000))
        SEED = 7
        started = time.perf_counter()
        pd.set_option("display.max_columns", 14, "display.width", 160, "display.precision", 3)
        ''', FORMAT_HELPERS),
        md("""
        ## The raw logs

        The simulator writes what a warehouse export would hold: `events.parquet` and the campaign's `sent.csv`
        (customer id, arm, exposure time). The truth (each customer's true uplift and latent traits) is set
        aside for the check at the end.
        """),
        code('''
        log = simulate_events(SAMPLE, seed=SEED)
        log.events.to_parquet("events.parquet", index=False)
        log.campaign.to_csv("sent.csv", index=False)
        truth = log.truth.set_index("customer_id")
        print(f"{len(log.events):,} events of {SAMPLE:,} customers, {log.events.timestamp.min():%Y-%m-%d} to "
              f"{log.events.timestamp.max():%Y-%m-%d}")
        display(log.events.head(6))
        display(log.events.event_type.value_counts().rename("events").to_frame().T)
        display(log.campaign.head(3))
        '''),
        md("""
        ## Point-in-time features

        On the command line this is

        ```bash
        uplift features --events events.parquet --campaign sent.csv --treatment arm --as-of-exposure \\
            --window 7,30,90,365 --outcome purchase:14d --out campaign_table.parquet
        ```

        and in Python `build_features`, the function the command calls. Every window ends at the customer's own
        exposure time; the schema (saved beside the output by the command) records each window.
        """),
        code('''
        built = build_features("events.parquet", "sent.csv", treatment="arm", windows=[7, 30, 90, 365],
                               outcomes=["purchase:14d"], observed_until=str(log.observed_until))
        table = built.frame
        print(f"{len(built.feature_names)} features, outcomes {built.outcome_names}; notes: {built.notes or 'none'}")
        display(pd.DataFrame(built.schema["features"])[["name", "kind", "window"]].iloc[[0, 4, 13, 40, -3, -1]])
        display(table[["customer_id", "arm", "purchase_count_90d", "purchase_recency_days", "aov_365d",
                       "conversion_14d", "revenue_14d"]].head())
        '''),
        md("""
        ## The leakage guard

        A common mistake is to compute every feature "as of" the day the data were pulled, after the campaign.
        The coupon then causes visits and purchases that become features. `uplift features` refuses that:
        """),
        code('''
        try:
            build_features("events.parquet", "sent.csv", treatment="arm", as_of=str(log.observed_until))
        except UpliftInputError as err:
            print("refused:", err)
        '''),
        md("""
        ## The study, on three quarters of the customers

        The table goes to `Study` as any campaign table does. Here it is stored in a DuckDB database and read
        back through SQL (`uplift fit --db shop.duckdb --table campaign ...` on the command line): the same
        typed reader as a file, so the study is the same. A quarter of the customers are held out to check the
        model against the truth.
        """),
        code('''
        write_sql_table(table, "shop.duckdb", "campaign")
        rng = np.random.default_rng(SEED)
        held_out = rng.random(len(table)) < 0.25
        train_ids = tuple(table.customer_id[~held_out])
        train = read_sql(db="shop.duckdb", table="campaign", text=["customer_id", "arm"])
        train = train[train.customer_id.isin(train_ids)].reset_index(drop=True)
        exclude = ["exposure_time", "revenue_14d"]
        study = Study(train, "arm", "conversion_14d", id="customer_id", exclude=exclude).fit()
        effect = study.ate().iloc[0]
        print(f"design: {study.design}; chosen learner: {study.best_learner_}")
        print("average effect of the coupon on buying within 14 days:",
              pp(effect.estimate, effect.lower, effect.upper),
              f"(true average on these customers: {100 * truth.true_uplift[list(train_ids)].mean():.2f} pp)")
        display(study.leaderboard()[["learner", "qini", "auuc", "dr_loss"]].head(4))
        '''),
        md("""
        ## Against the truth, on held-out customers

        PEHE is the root mean squared error of each customer's predicted uplift against the true one; the
        policy value is the average true uplift of the 20% of customers the model would target first, beside
        random targeting and the oracle that knows the truth.
        """),
        code('''
        test = table[held_out].reset_index(drop=True)
        predicted = study.predict_uplift(test)["uplift"].to_numpy()
        true_uplift = truth.true_uplift.reindex(test.customer_id).to_numpy()
        k = int(0.2 * len(test))
        top = np.argsort(-predicted)[:k]
        pehe = 100 * np.sqrt(np.mean((predicted - true_uplift) ** 2))
        print(f"PEHE {pehe:.2f} pp on {len(test):,} held-out customers")
        print(f"top 20% by predicted uplift: true uplift {100 * true_uplift[top].mean():.2f} pp; random "
              f"{100 * true_uplift.mean():.2f} pp; oracle {100 * np.sort(true_uplift)[-k:].mean():.2f} pp")
        '''),
        md("""
        ## What a forced leak does

        `--allow-leakage` (here `allow_leakage=True`) builds the features as of the end of the log anyway, with
        a loud warning. The coupon's own visits make the arms look different, so the study treats the campaign
        as observational and adjusts for features that the coupon caused, among them the very purchases that
        are the outcome: the effect is explained away.
        """),
        code('''
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            leaked = build_features("events.parquet", "sent.csv", treatment="arm", as_of=str(log.observed_until),
                                    allow_leakage=True, observed_until=str(log.observed_until))
        print(str(caught[0].message)[:150], "...")
        leaky_train = leaked.frame[~held_out].reset_index(drop=True)
        leaky = Study(leaky_train, "arm", "conversion_14d", id="customer_id", exclude=exclude).fit(
            ["t", "dr"], allow_leakage=True)
        shown = leaky.ate()
        shown = shown[shown.estimand != "naive"].iloc[0]
        print(f"design: {leaky.design}; average effect with leaked features:",
              pp(shown.estimate, shown.lower, shown.upper), "(without the leak:",
              pp(effect.estimate, effect.lower, effect.upper) + ")")
        print(f"Notebook ran in {time.perf_counter() - started:.0f} s on {SAMPLE:,} customers.")
        '''),
    ]


NOTEBOOKS = {
    "01_email_ab_test": email_ab_test,
    "02_observational_coupons": observational_coupons,
    "03_multi_coupon_budget": multi_coupon_budget,
    "04_events_to_study": events_to_study,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` without outputs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = NOTEBOOKS[name]()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    # Stable cell ids keep re-generated notebooks' diffs small.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 900) -> float:
    """Run ``nb`` top to bottom in a fresh kernel inside a temporary directory; return the seconds taken."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="uplift-notebook-") as cwd:
        NotebookClient(nb, kernel_name="python3", timeout=timeout, record_timing=False,
                       resources={"metadata": {"path": cwd}}).execute()
    nb.metadata["language_info"] = {"name": "python"}  # drop the kernel's version details: stable diffs
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="build only notebooks whose name contains one of these")
    parser.add_argument("--no-execute", action="store_true", help="write the notebooks without outputs")
    args = parser.parse_args(argv)
    if os.environ.pop("UPLIFT_SAMPLE", None) is not None:
        print("UPLIFT_SAMPLE ignored: stored notebooks use their default SAMPLE", file=sys.stderr)
    for name in NOTEBOOKS:
        if args.only and not any(part in name for part in args.only):
            continue
        nb = build(name)
        if not args.no_execute:
            print(f"{name}: executed in {execute(nb):.1f} s", flush=True)
        nbformat.validate(nb)
        nbformat.write(nb, HERE / f"{name}.ipynb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
