"""Allow `python -m tmi_db_exporter`."""

from tmi_db_exporter.cli import main

raise SystemExit(main())
