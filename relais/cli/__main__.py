"""`python -m relais.cli ...`: the `relais` command without its console script (the web tests start it so)."""

from relais.cli.root import main

main()
