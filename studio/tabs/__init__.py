"""One module per tab of the studio; `studio.ui.TABS` lists them in order."""
