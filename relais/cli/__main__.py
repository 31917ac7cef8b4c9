"""``python -m relais.cli``: the `relais` command, as before `relais/cli.py` became a package (the tests run
it this way, with the interpreter under test)."""

from relais.cli.root import main

main()
