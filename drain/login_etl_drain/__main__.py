"""``python -m login_etl_drain drain ...`` (same as the ``login-etl`` console script)."""

from login_etl_drain.cli import main

raise SystemExit(main())
