"""`python -m bingx_assets ...` is the `bingx-assets` command."""

from ._cli import main

raise SystemExit(main())
