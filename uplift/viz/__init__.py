"""Pictures and the HTML report: plots take tables or arrays (:mod:`uplift.viz.plots`), the report renders
results it is given (:mod:`uplift.viz.report`)."""
