"""``python -m hotmess.cli``: the ``hotmess`` command."""

from hotmess.cli.main import main

main()
